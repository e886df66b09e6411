"""A foreground run that loses its lease: the client gets what is stored, never an answer the
database does not hold (issue: 12 of 12 clients got `completed` while `failed` was stored).

The row is taken from under the run as the sweeper would take it after missed heartbeats
(status set to `failed`); the run's next renewal finds it gone, the run stops, its late
result is refused by the fenced write, and the client is told what the database says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import ResponseRow
from tests.conftest import Project, sdk, server_settings
from tests.e2e.test_streaming import parse_frames
from tests.harness import RapportServer
from tests.upstream import TestUpstream

TAKEN = "The server handling this response stopped before the model finished."
SLOW = "one two three four five six seven eight [sleep:400]"  # ≈ 4 s of deltas
SYNC_SLOW = "a slow answer [sleep:1800]"  # within the test upstream timeout of 2 s


@pytest.fixture(scope="module")
def short_lease(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    settings = server_settings(database_url, upstream, lease_seconds=1.2)
    server = RapportServer(settings).start()
    yield server
    server.stop()


async def take_over(sessions: async_sessionmaker[AsyncSession], project: Project) -> str:
    """Wait for the project's running response, then fail it as the sweeper would."""
    for _ in range(200):
        async with sessions() as session, session.begin():
            response_id = await session.scalar(
                sa.select(ResponseRow.id).where(
                    ResponseRow.project_id == project.project_id,
                    ResponseRow.status == "in_progress",
                )
            )
            if response_id is not None:
                await session.execute(
                    sa.update(ResponseRow)
                    .where(ResponseRow.id == response_id)
                    .values(status="failed", error={"code": "server_error", "message": TAKEN})
                )
                return str(response_id)
        await asyncio.sleep(0.02)
    raise AssertionError("no response started")


async def stored(sessions: async_sessionmaker[AsyncSession], response_id: str) -> Any:
    async with sessions() as session:
        return (
            await session.execute(
                sa.text("SELECT status, error, usage FROM responses WHERE id = :id"),
                {"id": response_id},
            )
        ).one()


async def test_a_sync_create_answers_what_is_stored(
    short_lease: RapportServer, project: Project, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client: AsyncOpenAI = sdk(short_lease, project)
    create = asyncio.create_task(client.responses.create(model="test-model", input=SYNC_SLOW))
    response_id = await take_over(sessions, project)
    with pytest.raises(openai.InternalServerError) as caught:
        await create
    assert TAKEN in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"
    row = await stored(sessions, response_id)
    assert (row.status, row.error["message"], row.usage) == ("failed", TAKEN, None)
    fetched = await client.responses.retrieve(response_id)
    assert (fetched.status, fetched.output) == ("failed", [])


async def test_a_stream_ends_with_what_is_stored(
    short_lease: RapportServer, project: Project, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = {"authorization": f"Bearer {project.secret}"}
    body = {"model": "test-model", "input": SLOW, "stream": True}
    async with httpx.AsyncClient(
        base_url=short_lease.base_url, headers=headers, timeout=30
    ) as http:

        async def read() -> str:
            async with http.stream("POST", "/responses", json=body) as answer:
                return (await answer.aread()).decode()

        streaming = asyncio.create_task(read())
        response_id = await take_over(sessions, project)
        events = parse_frames(await streaming)
    final = events[-1]
    assert final["type"] == "response.failed"
    assert final["response"]["status"] == "failed"
    assert final["response"]["error"]["message"] == TAKEN
    assert (await stored(sessions, response_id)).status == "failed"
    # The run stopped early: it never streamed the whole answer.
    deltas = "".join(e.get("delta", "") for e in events if e["type"].endswith("text.delta"))
    assert deltas != f"echo: {SLOW}"
