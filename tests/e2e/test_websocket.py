"""WebSocket mode at `/v1/responses`, over real sockets: events, chains, the cache, refusals."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.conftest import Project
from tests.e2e.test_observability import access_lines, root_of, samples, value
from tests.e2e.test_streaming import (
    LONG_ANSWER,
    LONG_INPUT,
    TERMINAL,
    Sessions,
    check_stream,
    fetch,
    poll_waiters,
    post_stream,
    settled_status,
    stored_output,
    upstream_hangups,
    upstream_hung_up,
)
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

Event = dict[str, Any]
EVENT_TIMEOUT_S = 10.0

__all__ = ["upstream_hangups"]  # a fixture of test_streaming's, used here too


def socket_url(server: RapportServer) -> str:
    return server.base_url.replace("http://", "ws://", 1) + "/responses"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
async def ws(rapport: RapportServer, project: Project) -> AsyncIterator[ClientConnection]:
    async with connect(socket_url(rapport), additional_headers=bearer(project.secret)) as socket:
        yield socket


@pytest.fixture
def another_socket(rapport: RapportServer, project: Project) -> Callable[[], connect]:
    """Opens another connection of the test's project, when the test asks for it."""
    return lambda: connect(socket_url(rapport), additional_headers=bearer(project.secret))


@pytest.fixture
async def http(rapport: RapportServer, project: Project) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=rapport.base_url, headers=bearer(project.secret), timeout=10
    ) as http:
        yield http


async def send_create(socket: ClientConnection, **body: Any) -> None:
    await socket.send(json.dumps({"type": "response.create", "model": "test-model", **body}))


async def next_event(socket: ClientConnection) -> Event:
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        frame = await socket.recv()
    assert isinstance(frame, str)  # text frames, as OpenAI sends them
    event: Event = json.loads(frame)
    return event


async def read_turn(socket: ClientConnection) -> list[Event]:
    """Events up to the terminal one, or the lone `error` event of a refused create."""
    events: list[Event] = []
    while True:
        event = await next_event(socket)
        events.append(event)
        if event["type"] in TERMINAL or (event["type"] == "error" and len(events) == 1):
            return events


async def turn(socket: ClientConnection, **body: Any) -> list[Event]:
    await send_create(socket, **body)
    return await read_turn(socket)


async def completed(socket: ClientConnection, **body: Any) -> dict[str, Any]:
    events = await turn(socket, **body)
    assert events[0]["type"] != "error", events[0]
    response = check_stream(events)
    assert response["status"] == "completed", events[-1]
    return response


async def refused(socket: ClientConnection, **body: Any) -> dict[str, Any]:
    [event] = await turn(socket, **body)
    return checked_error(event)


def checked_error(event: Event) -> dict[str, Any]:
    """An `error` event in OpenAI's WebSocket shape: status, and the four-key error object."""
    assert event["type"] == "error", event
    assert schema_errors("ResponseWsError", event) == []
    assert set(event) == {"type", "status", "error"}
    assert set(event["error"]) == {"message", "type", "param", "code"}
    return event


def messages(upstream: TestUpstream) -> list[dict[str, Any]]:
    """The chat messages of the upstream's last request."""
    sent: list[dict[str, Any]] = upstream.last_request().body["messages"]
    return sent


def without_ids(events: list[Event]) -> list[Event]:
    """Events with what differs between two runs of one request (ids, times) blanked."""
    varying = {"id", "item_id", "created_at", "completed_at", "obfuscation"}

    def blank(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: None if k in varying else blank(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v) for v in value]
        return value

    return [blank(event) for event in events]


async def test_one_turn_is_the_sse_stream(
    ws: ClientConnection, http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    """The same events as SSE sends for the same request: types, order, sequence numbers from
    0, payloads; the terminal response is what GET returns afterwards."""
    events = await turn(ws, input="tell me a story")
    response = check_stream(events)
    assert upstream.last_request().body["stream"] is True
    _, over_sse = await post_stream(http, input="tell me a story", stream=True)
    assert [e["type"] for e in events] == [e["type"] for e in over_sse]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert without_ids(events) == without_ids(over_sse)
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "echo: tell me a story"
    assert await fetch(http, response["id"]) == response


async def test_stored_turns_chain_on_one_socket(
    ws: ClientConnection,
    http: httpx.AsyncClient,
    upstream: TestUpstream,
    rapport: RapportServer,
    project: Project,
) -> None:
    first = await completed(ws, input="turn 0")
    second = await completed(ws, input="turn 1", previous_response_id=first["id"])
    assert messages(upstream) == [
        {"role": "user", "content": "turn 0"},
        {"role": "assistant", "content": "echo: turn 0"},
        {"role": "user", "content": "turn 1"},
    ]
    assert second["previous_response_id"] == first["id"]
    assert await fetch(http, second["id"]) == second
    # Stored turns are read from the database: a new socket continues them just as well.
    async with connect(socket_url(rapport), additional_headers=bearer(project.secret)) as other:
        third = await completed(other, input="turn 2", previous_response_id=second["id"])
    assert len(messages(upstream)) == 5
    assert third["output"][0]["content"][0]["text"] == "echo: turn 2"


async def test_store_false_chains_through_the_connection(
    ws: ClientConnection, http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    """An unstored response is continued from what the connection kept (its history, input
    and output), turn after turn; nothing reaches the database."""
    first = await completed(ws, input="turn 0", store=False, instructions="Be brief.")
    # Another model counts tokens with another encoding: the kept counts are not reused.
    second = await completed(
        ws, model="gpt-4-turbo", input="turn 1", store=False, previous_response_id=first["id"]
    )
    assert messages(upstream) == [
        {"role": "user", "content": "turn 0"},
        {"role": "assistant", "content": "echo: turn 0"},
        {"role": "user", "content": "turn 1"},
    ]
    third = await completed(
        ws,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "turn 2"}]}],
        store=False,
        previous_response_id=second["id"],
    )
    assert [m["content"] for m in messages(upstream)] == [
        "turn 0",
        "echo: turn 0",
        "turn 1",
        "echo: turn 1",
        "turn 2",
    ]
    assert third["previous_response_id"] == second["id"]
    assert third["usage"]["input_tokens"] > second["usage"]["input_tokens"]
    for response in (first, second, third):
        assert response["store"] is False
        assert (await http.get(f"/responses/{response['id']}")).status_code == 404


async def test_an_unstored_id_on_a_new_socket_is_not_found(
    ws: ClientConnection, rapport: RapportServer, project: Project
) -> None:
    first = await completed(ws, input="turn 0", store=False)
    async with connect(socket_url(rapport), additional_headers=bearer(project.secret)) as other:
        error = await refused(other, input="turn 1", store=False, previous_response_id=first["id"])
    assert error["status"] == 400
    assert error["error"] == {
        "message": f"Previous response with id '{first['id']}' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }
    # The socket that made it still continues it.
    await completed(ws, input="turn 1", store=False, previous_response_id=first["id"])


async def test_only_the_last_response_is_kept(ws: ClientConnection) -> None:
    first = await completed(ws, input="turn 0", store=False)
    await completed(ws, input="unrelated", store=False)
    error = await refused(ws, input="turn 1", store=False, previous_response_id=first["id"])
    assert error["error"]["code"] == "previous_response_not_found"


@pytest.mark.parametrize(
    "failing",
    [
        {"input": "turn 1 [fail:500]"},  # the turn runs and ends `response.failed`
        {"input": "turn 1", "temperature": "hot"},  # the create is refused outright
    ],
)
async def test_a_failed_turn_evicts_the_kept_response(
    ws: ClientConnection, failing: dict[str, Any]
) -> None:
    first = await completed(ws, input="turn 0", store=False)
    events = await turn(ws, store=False, previous_response_id=first["id"], **failing)
    assert events[-1]["type"] in ("response.failed", "error")
    if events[-1]["type"] == "response.failed":
        check_stream(events)
    else:
        checked_error(events[-1])
    error = await refused(ws, input="turn 2", store=False, previous_response_id=first["id"])
    assert error["error"]["code"] == "previous_response_not_found"


async def test_a_stored_turn_cannot_continue_an_unstored_one(ws: ClientConnection) -> None:
    first = await completed(ws, input="turn 0", store=False)
    error = await refused(ws, input="turn 1", previous_response_id=first["id"])
    assert (error["status"], error["error"]["param"]) == (400, "store")


async def test_a_second_create_while_one_runs_is_refused(ws: ClientConnection) -> None:
    await send_create(ws, input="slowly [sleep:100]")
    await send_create(ws, input="too soon")
    events = [await next_event(ws)]
    while events[-1]["type"] not in TERMINAL:
        events.append(await next_event(ws))
    [busy] = [event for event in events if event["type"] == "error"]
    assert checked_error(busy)["error"]["code"] == "response_already_in_flight"
    assert busy["status"] == 400
    response = check_stream([event for event in events if event is not busy])
    assert response["output"][0]["content"][0]["text"] == "echo: slowly [sleep:100]"
    # Once the terminal event is out, the next create is welcome at once.
    again = await completed(ws, input="now", previous_response_id=response["id"])
    assert again["previous_response_id"] == response["id"]


@pytest.mark.parametrize(
    ("frame", "status", "param", "code"),
    [
        ("not json", 400, None, "invalid_json"),
        ("", 400, None, "invalid_json"),
        ("[1, 2]", 400, None, "invalid_type"),
        ('{"model": "test-model", "input": "hi"}', 400, "type", "missing_required_parameter"),
        ('{"type": "response.cancel"}', 400, "type", "invalid_value"),
        ('{"type": "response.steer", "input": "hi"}', 400, "type", "unsupported_parameter"),
        ('{"type": "response.create", "input": "hi"}', 400, "model", "missing_required_parameter"),
        (
            '{"type": "response.create", "model": "m", "bogus": 1}',
            400,
            "bogus",
            "unknown_parameter",
        ),
        ('{"type": "response.create", "model": "m", "temperature": 9}', 400, "temperature", None),
        ('{"type": "response.create", "model": "m", "background": true}', 400, "background", None),
        ('{"type": "response.create", "model": "m", "stream_id": "a"}', 400, "stream_id", None),
    ],
)
async def test_a_bad_create_gets_an_error_and_the_socket_carries_on(
    ws: ClientConnection, frame: str, status: int, param: str | None, code: str | None
) -> None:
    await ws.send(frame)
    event = checked_error(await next_event(ws))
    assert event["status"] == status, event
    assert event["error"]["param"] == param
    if code is not None:
        assert event["error"]["code"] == code
    assert event["error"]["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    response = await completed(ws, input="still here")
    assert response["output"][0]["content"][0]["text"] == "echo: still here"


async def test_stream_flags_are_ignored(ws: ClientConnection) -> None:
    """`stream` is implied: whatever a client sends there, the answer is streamed."""
    for stream in (False, True, None):
        await completed(ws, input="hi", stream=stream)
    response = await completed(ws, input="hi", stream_options={"include_obfuscation": False})
    assert response["status"] == "completed"


async def test_closing_the_socket_mid_run_cancels_the_response(
    rapport: RapportServer,
    project: Project,
    http: httpx.AsyncClient,
    sessions: Sessions,
    upstream: TestUpstream,
    upstream_hangups: list[float],
) -> None:
    """As a closed SSE stream: the upstream call is aborted, the response ends `cancelled`
    with the text streamed so far in an `incomplete` message."""
    received: list[str] = []
    async with connect(socket_url(rapport), additional_headers=bearer(project.secret)) as socket:
        await send_create(socket, input=LONG_INPUT)
        created = await next_event(socket)
        response_id = created["response"]["id"]
        while len(received) < 2:
            event = await next_event(socket)
            if event["type"] == "response.output_text.delta":
                received.append(event["delta"])
    assert await settled_status(sessions, response_id) == "cancelled"
    fetched = await fetch(http, response_id)
    assert fetched["status"] == "cancelled"
    [message] = await stored_output(sessions, response_id)
    assert fetched["output"] == [message]
    assert message["status"] == "incomplete"
    text = message["content"][0]["text"]
    assert text.startswith("".join(received))
    assert LONG_ANSWER.startswith(text)
    assert text != LONG_ANSWER
    await upstream_hung_up(upstream, upstream_hangups)


async def test_closing_the_socket_while_the_create_starts_cancels_it(
    rapport: RapportServer,
    project: Project,
    client: AsyncOpenAI,
    sessions: Sessions,
) -> None:
    """A socket closed during unit of work #1 (held here on the conversation's row lock): the
    unit of work is let finish, then the response ends `cancelled` and frees the conversation."""
    conversation = await client.conversations.create()
    async with sessions() as locker:
        await locker.execute(
            sa.text("SELECT id FROM conversations WHERE id = :id FOR UPDATE"),
            {"id": conversation.id},
        )
        async with connect(
            socket_url(rapport), additional_headers=bearer(project.secret)
        ) as socket:
            await send_create(socket, input="hello", conversation=conversation.id)
            await poll_waiters(sessions, 1)  # the server's unit of work waits on our lock
        await locker.rollback()
    assert await settled_statuses(sessions, project) == ["cancelled"]
    items = await client.conversations.items.list(conversation.id)
    assert items.data == []
    await client.responses.create(model="test-model", input="again", conversation=conversation.id)


async def settled_statuses(sessions: Sessions, project: Project) -> list[str]:
    """The statuses of the project's responses once one exists and none is in progress (~5 s)."""
    statuses: list[str] = []
    for _ in range(100):
        async with sessions() as session:
            rows = await session.scalars(
                sa.text("SELECT status FROM responses WHERE project_id = :p"),
                {"p": project.project_id},
            )
            statuses = list(rows)
        if statuses and "in_progress" not in statuses:
            break
        await asyncio.sleep(0.05)
    return statuses


@pytest.mark.parametrize(
    ("headers", "code", "starts"),
    [
        ({}, None, "You didn't provide an API key."),
        (bearer("sk-gateway-wrong-key-0123456789"), "invalid_api_key", "Incorrect API key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, None, "You didn't provide an API key."),
    ],
)
async def test_a_wrong_or_missing_key_is_refused_in_openai_shape(
    rapport: RapportServer, headers: dict[str, str], code: str | None, starts: str
) -> None:
    with pytest.raises(InvalidStatus) as refusal:
        async with connect(socket_url(rapport), additional_headers=headers):
            pass
    answer = refusal.value.response
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    error = json.loads(answer.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("invalid_request_error", code)
    assert error["message"].startswith(starts)
    assert "wrong-key-0123456789" not in error["message"]  # the key is masked, as over HTTP


async def test_a_foreign_stored_response_is_not_found(
    ws: ClientConnection, other_client: AsyncOpenAI
) -> None:
    theirs = await other_client.responses.create(model="test-model", input="theirs")
    error = await refused(ws, input="mine", previous_response_id=theirs.id)
    assert error["error"]["code"] == "previous_response_not_found"


async def test_the_post_route_still_answers_on_the_same_path(http: httpx.AsyncClient) -> None:
    answer = await http.post("/responses", json={"model": "test-model", "input": "plain"})
    assert answer.status_code == 200
    assert (await http.get("/responses")).status_code == 405


async def test_the_sdk_websocket_client(client: AsyncOpenAI) -> None:
    """The official SDK's `responses.connect()` drives Rapport's socket."""
    async with client.responses.connect() as connection:
        first_id = ""
        for text in ("turn 0", "turn 1"):
            await connection.response.create(
                model="test-model",
                input=text,
                store=False,
                **({"previous_response_id": first_id} if first_id else {}),
            )
            async for event in connection:
                if event.type == "response.completed":
                    break
                assert event.type != "error", event
            assert event.response.output_text == f"echo: {text}"
            first_id = event.response.id


async def test_a_warm_up_is_continued_without_a_model_call(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    """`generate: false`, as Codex opens each session: completed at once with no output, no
    tokens and no upstream call; the next turn continues it with only its new input."""
    rules = [{"role": "developer", "content": "house rules"}]
    async with client.responses.connect() as connection:
        await connection.response.create(
            model="test-model", input=rules, store=False, generate=False
        )
        kinds = []
        async for event in connection:
            kinds.append(event.type)
            if event.type in TERMINAL or event.type == "error":
                break
        assert kinds == ["response.created", "response.in_progress", "response.completed"]
        assert event.type == "response.completed"
        warm = event.response
        assert (warm.status, warm.output, warm.store) == ("completed", [], False)
        assert warm.usage is not None
        assert warm.usage.total_tokens == 0
        assert upstream.requests == []
        await connection.response.create(
            model="test-model", input="turn 1", store=False, previous_response_id=warm.id
        )
        async for event in connection:
            assert event.type != "error", event
            if event.type == "response.completed":
                break
    assert event.response.output_text == "echo: turn 1"
    assert event.response.previous_response_id == warm.id
    [sent] = [r.body["messages"] for r in upstream.requests]
    assert [m["content"] for m in sent] == ["house rules", "turn 1"]


async def test_a_stored_warm_up_is_kept_like_any_response(
    ws: ClientConnection,
    http: httpx.AsyncClient,
    upstream: TestUpstream,
    another_socket: Callable[[], connect],
) -> None:
    warm = await completed(ws, input="remember this", generate=False)
    assert warm["output"] == []
    assert warm["usage"]["total_tokens"] == 0
    assert await fetch(http, warm["id"]) == warm
    items = (await http.get(f"/responses/{warm['id']}/input_items")).json()["data"]
    assert [item["content"][0]["text"] for item in items] == ["remember this"]
    async with another_socket() as other:
        await completed(other, input="turn 1", previous_response_id=warm["id"])
    assert [m["content"] for m in messages(upstream)] == ["remember this", "turn 1"]
    assert len(upstream.requests) == 1


async def test_each_create_on_a_socket_is_logged_and_counted(
    ws: ClientConnection,
    rapport: RapportServer,
    project: Project,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A socket carries many responses: each gets an access line (method WEBSOCKET) and a
    count, so traffic over sockets is as visible as traffic over HTTP."""
    caplog.set_level(logging.INFO, logger="rapport.access")
    scrape = f"{root_of(rapport)}/metrics"
    async with httpx.AsyncClient() as scraper:
        before = samples((await scraper.get(scrape)).text)
        answered = await completed(ws, input="log me")
        warm = await completed(ws, input="log me too", generate=False)
        await refused(ws, input="hot", temperature=9)
        after = samples((await scraper.get(scrape)).text)
    lines = [line for line in access_lines(caplog) if line["method"] == "WEBSOCKET"]
    assert [(line["route"], line["status"]) for line in lines] == [
        ("/v1/responses", 200),
        ("/v1/responses", 200),
        ("/v1/responses", 400),
    ]
    generated, warmed, refusal = lines
    assert generated["response_id"] == answered["id"]
    assert warmed["response_id"] == warm["id"]
    assert refusal.get("response_id") is None
    for line in lines:
        assert line["project_id"] == project.project_id
        assert str(line["request_id"]).startswith("req_")
        assert isinstance(line["duration_ms"], float)
    assert generated["model"] == "test-model"
    assert isinstance(generated["upstream_ms"], float)
    assert generated["output_tokens"] == answered["usage"]["output_tokens"]
    assert warmed.get("upstream_ms") is None

    def grew(status: str) -> float:
        name = "rapport_websocket_responses_total"
        return value(after, name, status=status) - value(before, name, status=status)

    assert (grew("200"), grew("400")) == (2, 1)
