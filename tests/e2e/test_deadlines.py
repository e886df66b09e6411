"""A trickling upstream — a byte every 0.2 s, so no single read ever times out — is bounded
by the total deadline of one upstream call: the run fails with the deadline error, stored,
streamed or not. The deadline is global (RAPPORT_UPSTREAM_DEADLINE) or a route's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import Project, rapport_with_routes, sdk, server_settings
from tests.e2e.test_upstream_faults import stored_failure_answer
from tests.harness import RapportServer
from tests.upstream import TestUpstream

TRICKLE = "[trickle:200]"  # the answer one byte every 0.2 s: minutes for a whole answer
DEADLINE = 1.5


@pytest.fixture(scope="module")
def deadlined(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    """The global deadline on the catch-all; the route `slow-route` sets a shorter one."""
    settings = server_settings(database_url, upstream, upstream_deadline_seconds=DEADLINE)
    server = RapportServer(settings).start()
    yield server
    server.stop()


def _is_the_deadline(error: Any, seconds: float) -> bool:
    return error.code == "server_error" and f"did not end within {seconds:g} seconds" in (
        error.message
    )


async def test_a_trickling_answer_fails_at_the_deadline(
    deadlined: RapportServer, project: Project
) -> None:
    client = sdk(deadlined, project)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.responses.create(model="test-model", input=f"hello {TRICKLE}")
    answer = caught.value
    response_id = stored_failure_answer(answer, 504)
    assert "RAPPORT_UPSTREAM_DEADLINE" in answer.message
    stored = await client.responses.retrieve(response_id)
    assert (stored.status, stored.output) == ("failed", [])
    assert _is_the_deadline(stored.error, DEADLINE)


async def test_a_trickling_stream_ends_response_failed_at_the_deadline(
    deadlined: RapportServer, project: Project
) -> None:
    client = sdk(deadlined, project)
    stream = await client.responses.create(model="test-model", input=f"hi {TRICKLE}", stream=True)
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.failed"
    final = events[-1].response
    assert _is_the_deadline(final.error, DEADLINE)
    fetched = await client.responses.retrieve(final.id)
    assert fetched.status == "failed"
    assert _is_the_deadline(fetched.error, DEADLINE)


async def test_a_routes_own_deadline_wins(
    database_url: str, upstream: TestUpstream, project: Project
) -> None:
    with rapport_with_routes(database_url, upstream, brief={"deadline_seconds": 0.8}) as server:
        client = sdk(server, project)
        stream = await client.responses.create(model="brief", input=f"hi {TRICKLE}", stream=True)
        events = [event async for event in stream]
    assert events[-1].type == "response.failed"
    assert _is_the_deadline(events[-1].response.error, 0.8)
