"""A database that stops answering: 503 in OpenAI's shape with retry-after, never a generic 500.

Rapport reaches Postgres through a TCP proxy of the test's own (tests/tcp_proxy.py); pausing
it refuses new connections and cuts the pooled ones, as a database outage does.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.responses.service import ResponseService
from tests.conftest import Project, new_project, server_settings
from tests.harness import RapportServer
from tests.tcp_proxy import TcpProxy
from tests.upstream import TestUpstream

SLOW = "[sleep:400] " + " ".join(f"w{n}" for n in range(8))  # ~3 s streamed, 0.4 s whole


@pytest.fixture(scope="module")
def proxy(database_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(database_url)
    forwarder = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    yield forwarder
    forwarder.stop()


@pytest.fixture(scope="module")
def proxied(proxy: TcpProxy, database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    parts = urlsplit(database_url)
    url = database_url.replace(parts.netloc.rsplit("@", 1)[-1], f"127.0.0.1:{proxy.port}", 1)
    server = RapportServer(server_settings(url, upstream)).start()
    yield server
    server.stop()


@pytest.fixture
async def http(
    proxied: RapportServer, proxy: TcpProxy, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a key of a new project (its key is not cached: auth reads the database)."""
    project: Project = await new_project(sessions)
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(base_url=proxied.base_url, headers=headers, timeout=30) as client:
        try:
            yield client
        finally:
            proxy.resume()


def assert_unavailable(answer: httpx.Response, *, should_retry: str) -> dict[str, Any]:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"].isdigit()
    assert answer.headers["x-should-retry"] == should_retry
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "server_error"
    assert error["code"] == "service_unavailable"
    assert "Traceback" not in error["message"]
    assert "postgres" not in error["message"].lower()
    return error


async def test_while_the_database_is_away_every_route_answers_503_then_works_again(
    http: httpx.AsyncClient, proxy: TcpProxy
) -> None:
    created = await http.post("/responses", json={"model": "test-model", "input": "hi"})
    conversation = await http.post("/conversations", json={})
    assert created.status_code == conversation.status_code == 200
    response_id, conversation_id = created.json()["id"], conversation.json()["id"]

    proxy.pause()
    attempts = [
        ("POST", "/responses", {"model": "test-model", "input": "hi"}),
        ("GET", f"/responses/{response_id}", None),
        ("GET", f"/responses/{response_id}/input_items", None),
        ("DELETE", f"/responses/{response_id}", None),
        ("POST", "/conversations", {}),
        ("GET", f"/conversations/{conversation_id}", None),
        ("POST", f"/conversations/{conversation_id}/items", {"items": []}),
    ]
    for method, path, body in attempts:
        answer = await http.request(method, path, json=body)
        error = assert_unavailable(answer, should_retry="true")
        assert "Nothing was stored" in error["message"], path

    proxy.resume()
    again = await http.post("/responses", json={"model": "test-model", "input": "hi again"})
    assert again.status_code == 200, again.text
    read = await http.get(f"/responses/{response_id}")
    assert read.status_code == 200
    assert read.json()["status"] == "completed"


async def test_an_unknown_key_during_the_outage_is_503_not_401(
    proxied: RapportServer, proxy: TcpProxy
) -> None:
    """Authentication reads the database too: without it no key can be judged either way."""
    proxy.pause()
    try:
        async with httpx.AsyncClient(
            base_url=proxied.base_url, headers={"authorization": "Bearer sk-gateway-unknown"}
        ) as client:
            answer = await client.get("/responses/resp_x")
    finally:
        proxy.resume()
    assert_unavailable(answer, should_retry="true")


async def test_a_create_accepted_before_the_outage_is_503_naming_its_id_with_no_retry(
    http: httpx.AsyncClient, proxy: TcpProxy
) -> None:
    """Unit of work #1 committed, the database went away while the model ran: the ending
    cannot be stored. A blind retry would create a second response: x-should-retry false."""
    pending = asyncio.create_task(
        http.post("/responses", json={"model": "test-model", "input": "[sleep:800] slow"})
    )
    await asyncio.sleep(0.4)
    proxy.pause()
    answer = await pending
    error = assert_unavailable(answer, should_retry="false")
    assert "resp_" in error["message"]
    proxy.resume()
    response_id = error["message"].split("resp_", 1)[1].split()[0]
    stored = await http.get(f"/responses/resp_{response_id}")
    assert stored.status_code == 200
    assert stored.json()["status"] == "in_progress"  # the sweeper fails it once its lease lapses


async def test_a_stream_in_flight_when_the_database_goes_away_ends_with_response_failed(
    http: httpx.AsyncClient, proxy: TcpProxy
) -> None:
    events: list[dict[str, Any]] = []
    body = {"model": "test-model", "input": SLOW, "stream": True}
    async with http.stream("POST", "/responses", json=body) as answer:
        assert answer.status_code == 200
        async for line in answer.aiter_lines():
            if not line.startswith("data: "):
                continue
            events.append(json.loads(line.removeprefix("data: ")))
            if events[-1]["type"] == "response.output_text.delta" and not proxy.paused:
                proxy.pause()
    kinds = [event["type"] for event in events]
    assert kinds[-1] == "response.failed", kinds
    final = events[-1]["response"]
    assert final["status"] == "failed"
    assert final["error"]["code"] == "server_error"
    assert "could not be stored" in final["error"]["message"]


async def test_an_unexpected_error_after_a_create_is_accepted_names_it_and_refuses_a_retry(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug of ours after unit of work #1 committed: 500, but the SDK must not retry it."""

    async def broken_settle(*_args: object) -> None:
        raise RuntimeError("a bug after the commit, with a secret sk-should-not-leak")

    monkeypatch.setattr(ResponseService, "settle", broken_settle)
    answer = await http.post("/responses", json={"model": "test-model", "input": "hi"})
    assert answer.status_code == 500
    assert answer.headers["x-should-retry"] == "false"
    error = answer.json()["error"]
    assert "resp_" in error["message"]
    assert "sk-should-not-leak" not in answer.text


async def test_an_unexpected_error_before_anything_is_stored_may_be_retried(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_begin(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug before the commit")

    monkeypatch.setattr(ResponseService, "begin", broken_begin)
    answer = await http.post("/responses", json={"model": "test-model", "input": "hi"})
    assert answer.status_code == 500
    assert "x-should-retry" not in answer.headers
    assert "resp_" not in answer.json()["error"]["message"]


# A Redis database of this module's own (test_background.py flushes the one it uses).
REDIS_URL = os.environ.get("RAPPORT_TEST_OUTAGE_REDIS_URL", "redis://127.0.0.1:6379/9")


async def test_redis_away_is_503_for_a_replay_and_a_background_create_still_accepted(
    database_url: str, upstream: TestUpstream, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Replaying a background response's events needs Redis: 503 while it is away. Accepting
    one does not (it is stored `queued`; the sweeper enqueues it once Redis is back)."""
    parts = urlsplit(REDIS_URL)
    redis_proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379).start()
    redis_url = f"redis://127.0.0.1:{redis_proxy.port}{parts.path}"
    server = RapportServer(server_settings(database_url, upstream, redis_url=redis_url)).start()
    project: Project = await new_project(sessions)
    headers = {"authorization": f"Bearer {project.secret}"}
    body = {"model": "test-model", "input": "later", "background": True}
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
            queued = (await client.post("/responses", json=body)).json()
            redis_proxy.pause()
            replay = await client.get(f"/responses/{queued['id']}", params={"stream": "true"})
            accepted = await client.post("/responses", json=body)
    finally:
        server.stop()
        redis_proxy.stop()
        leftovers = aioredis.from_url(REDIS_URL)
        await leftovers.flushdb()
        await leftovers.aclose()
    assert_unavailable(replay, should_retry="true")
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "queued"


async def test_a_commit_cut_short_may_have_stored_the_response_so_no_retry(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection died during COMMIT of unit of work #1: the response may be stored, so
    the 503 names its id and says x-should-retry: false (a retry could create it twice)."""
    assert (await http.get("/responses/resp_warm")).status_code == 404  # the key is cached now

    async def commit_cut_short(_session: AsyncSession) -> None:
        raise ConnectionResetError("connection reset during COMMIT")

    # On a conversation: its turn is a unit of work (the write off one is a single statement).
    conversation = (await http.post("/conversations", json={})).json()["id"]
    monkeypatch.setattr(AsyncSession, "commit", commit_cut_short)
    answer = await http.post(
        "/responses", json={"model": "test-model", "input": "hi", "conversation": conversation}
    )
    monkeypatch.undo()
    error = assert_unavailable(answer, should_retry="false")
    assert "resp_" in error["message"]


async def test_a_single_statement_write_cut_short_may_have_stored_it_so_no_retry(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a conversation, a create's write is one statement that commits by itself: a
    connection lost while it ran is as uncertain as a COMMIT cut short."""
    assert (await http.get("/responses/resp_warm")).status_code == 404  # the key is cached now
    fetchval = asyncpg.Connection.fetchval  # the write goes to the driver (app/db/direct.py)

    async def write_cut_short(connection: asyncpg.Connection, sql: str, *args: Any) -> Any:
        if sql.lstrip().upper().startswith("WITH") and "INSERT INTO items" in sql:
            raise ConnectionResetError("connection reset while the INSERT ran")
        return await fetchval(connection, sql, *args)

    monkeypatch.setattr(asyncpg.Connection, "fetchval", write_cut_short)
    answer = await http.post("/responses", json={"model": "test-model", "input": "hi"})
    monkeypatch.undo()
    error = assert_unavailable(answer, should_retry="false")
    assert "resp_" in error["message"]


def test_what_counts_as_a_store_that_did_not_answer() -> None:
    from sqlalchemy.exc import DataError, InterfaceError, OperationalError

    from app.outage import CommitUncertain, is_unreachable

    assert is_unreachable(OperationalError("SELECT 1", {}, ConnectionRefusedError()))
    assert is_unreachable(InterfaceError("SELECT 1", {}, Exception("connection is closed")))
    assert is_unreachable(OSError("Multiple exceptions: [Errno 111] Connect call failed"))
    assert is_unreachable(ConnectionRefusedError())
    assert is_unreachable(TimeoutError())
    assert is_unreachable(CommitUncertain())
    assert not is_unreachable(DataError("SELECT 1", {}, Exception("integer out of range")))
    assert not is_unreachable(FileNotFoundError("models.toml"))
