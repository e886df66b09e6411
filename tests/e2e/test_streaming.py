"""`stream: true` end to end: SSE framing, OpenAI's event order, SDK helpers, stored state."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import Project
from tests.harness import RapportServer
from tests.openapi import _components, schema_errors
from tests.upstream import REFUSAL, RecordedRequest, TestUpstream, _DropConnection

Event = dict[str, Any]
Sessions = async_sessionmaker[AsyncSession]

TERMINAL = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}
# delta event → (done event, field of the done event holding the whole text)
DELTAS = {
    "response.output_text.delta": ("response.output_text.done", "text"),
    "response.refusal.delta": ("response.refusal.done", "refusal"),
    "response.reasoning_text.delta": ("response.reasoning_text.done", "text"),
    "response.function_call_arguments.delta": (
        "response.function_call_arguments.done",
        "arguments",
    ),
    "response.custom_tool_call_input.delta": ("response.custom_tool_call_input.done", "input"),
    "response.mcp_call_arguments.delta": ("response.mcp_call_arguments.done", "arguments"),
}
DONES = {done: field for done, field in DELTAS.values()}
# A hosted tool's own progress events, about the open item (item_id, output_index only).
PROGRESS = {
    f"response.{item}.{stage}"
    for item, stages in {
        "mcp_list_tools": ("in_progress", "completed", "failed"),
        "mcp_call": ("in_progress", "completed", "failed"),
        "web_search_call": ("in_progress", "searching", "completed"),
    }.items()
    for stage in stages
}
TOOLS = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
    {"type": "function", "name": "get_time"},
]
TOOL_INPUT = 'weather? [tool:get_weather:{"city":"Oslo"}] [tool:get_time:{}]'


@pytest.fixture
async def http(rapport: RapportServer, project: Project) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(base_url=rapport.base_url, headers=headers, timeout=10) as http:
        yield http


@functools.cache
def event_schemas() -> dict[str, str]:
    """Event type → the name of its schema among OpenAI's `ResponseStreamEvent` variants."""
    schemas = _components()["components"]["schemas"]
    names = [ref["$ref"].rsplit("/", 1)[-1] for ref in schemas["ResponseStreamEvent"]["anyOf"]]
    return {schemas[name]["properties"]["type"]["enum"][0]: name for name in names}


# Where real streams differ from OpenAI's schema, Rapport follows the wire (reference §4.2): the
# created/in_progress snapshots carry `"usage": null`, and every Response carries `"user": null`,
# although the schema types both as non-nullable. Stand-ins replace those nulls before checking.
WIRE_NULLS = {
    "usage": {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    },
    "user": "",
}


def event_schema_errors(event: Event) -> list[str]:
    """`schema_errors` for one stream event against its own `ResponseStreamEvent` variant (the
    anyOf as a whole only says "not valid under any of the given schemas")."""
    if "response" in event:
        event = {**event, "response": wire_tolerant(event["response"])}
    return schema_errors(event_schemas()[event["type"]], event)


def wire_tolerant(response: dict[str, Any]) -> dict[str, Any]:
    return {
        key: WIRE_NULLS[key] if value is None and key in WIRE_NULLS else value
        for key, value in response.items()
    }


def parse_frames(text: str) -> list[Event]:
    """Strict SSE parsing: `event: <type>\\ndata: <one-line JSON>\\n\\n` and nothing else."""
    assert text.endswith("\n\n")
    events: list[Event] = []
    for frame in text[:-2].split("\n\n"):
        event_line, data_line = frame.split("\n")  # exactly two lines per frame
        assert event_line.startswith("event: ")
        assert data_line.startswith("data: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line.removeprefix("event: ") == data["type"]
        events.append(data)
    return events


async def post_stream(http: httpx.AsyncClient, **body: Any) -> tuple[httpx.Response, list[Event]]:
    """The whole stream of a create, read to its end (the server closes it)."""
    async with http.stream("POST", "/responses", json={"model": "test-model", **body}) as answer:
        text = (await answer.aread()).decode()
    assert answer.status_code == 200, text
    assert "[DONE]" not in text
    return answer, parse_frames(text)


async def iter_events(answer: httpx.Response) -> AsyncIterator[Event]:
    """Events as they arrive on an open stream."""
    async for line in answer.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line.removeprefix("data: "))


def check_stream(events: list[Event]) -> dict[str, Any]:
    """OpenAI's invariants on a whole stream; returns the terminal event's response.

    Sequence numbers 0, 1, …; created and in_progress snapshots first; every event valid against
    OpenAI's schema; items in sequential added…done blocks with rising output_index; every
    content event names the open item; deltas add up to their done event; each done item and
    part is exactly what the final response holds.
    """
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    for event in events:
        assert event_schema_errors(event) == [], event
        assert not event.get("error"), event  # the SDK would raise APIError
    created, in_progress, *body, final = events
    assert [created["type"], in_progress["type"]] == ["response.created", "response.in_progress"]
    for snapshot in (created["response"], in_progress["response"]):
        assert snapshot["status"] == "in_progress"
        assert snapshot["output"] == []
        assert snapshot["usage"] is None
        assert snapshot["completed_at"] is None
    assert in_progress["response"] == created["response"]
    response = final["response"]
    settled = {"status", "output", "usage", "completed_at", "error", "incomplete_details"}
    for key, value in created["response"].items():
        if key not in settled | {"service_tier"}:  # service_tier: `auto` settles on `default`
            assert response[key] == value, key
    assert TERMINAL[final["type"]] == response["status"]
    assert response["id"] == created["response"]["id"]
    output = response["output"]
    item: dict[str, Any] | None = None
    index = -1
    texts: dict[int | None, str] = {}
    for event in body:
        kind = event["type"]
        if kind == "response.output_item.added":
            assert item is None  # blocks are sequential, never interleaved
            index += 1
            item, texts = event["item"], {}
            assert event["output_index"] == index
            assert item.get("status", "in_progress") == "in_progress"
            continue
        assert item is not None, event
        assert event["output_index"] == index
        if kind == "response.output_item.done":
            assert (event["item"]["type"], event["item"]["id"]) == (item["type"], item["id"])
            assert event["item"] == output[index]
            item = None
            continue
        if kind.startswith("response.shell_call_command."):  # no item_id, as on OpenAI's wire
            check_shell_command(event, texts, output[index])
            continue
        assert event["item_id"] == item["id"]
        part_index = event.get("content_index")
        if kind == "response.content_part.added":
            assert part_index == len(texts)
            texts[part_index] = ""
            assert event["part"].get("text", event["part"].get("refusal")) == ""
        elif kind == "response.content_part.done":
            assert event["part"] == output[index]["content"][part_index]
        elif kind in DELTAS:
            texts[part_index] = texts.get(part_index, "") + event["delta"]
        elif kind in DONES:
            assert event[DONES[kind]] == texts.get(part_index, "")
            if kind == "response.function_call_arguments.done":
                assert event["name"] == item["name"]
                assert event["arguments"] == output[index]["arguments"]
            if kind == "response.custom_tool_call_input.done":
                assert event["input"] == output[index]["input"]
        elif kind in PROGRESS:
            assert kind.split(".")[1] == item["type"], event
        elif kind == "response.output_text.annotation.added":
            part = output[index]["content"][part_index]
            assert part["annotations"][event["annotation_index"]] == event["annotation"]
        else:
            pytest.fail(f"unexpected event {kind}")
    assert item is None
    assert index + 1 == len(output)
    return response


def check_shell_command(event: Event, texts: dict[int | None, str], item: Event) -> None:
    """A shell call's commands stream one by one: added (empty), deltas, done (whole)."""
    number = event["command_index"]
    if event["type"].endswith(".added"):
        assert number == len(texts)
        texts[number] = event["command"]
    elif event["type"].endswith(".delta"):
        texts[number] += event["delta"]
    else:
        assert event["command"] == texts[number] == item["action"]["commands"][number]


def squeeze(events: list[Event]) -> list[str]:
    """Event types with runs of the same delta type collapsed to one."""
    kinds: list[str] = []
    for event in events:
        if not (kinds and kinds[-1] == event["type"] and event["type"] in DELTAS):
            kinds.append(event["type"])
    return kinds


async def fetch(http: httpx.AsyncClient, response_id: str) -> dict[str, Any]:
    answer = await http.get(f"/responses/{response_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def stored_status(sessions: Sessions, response_id: str) -> str | None:
    async with sessions() as session:
        status: str | None = await session.scalar(
            sa.text("SELECT status FROM responses WHERE id = :id"), {"id": response_id}
        )
        return status


async def stored_output(sessions: Sessions, response_id: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.scalars(
            sa.text(
                "SELECT body FROM items WHERE response_id = :id AND side = 'output' "
                "ORDER BY position"
            ),
            {"id": response_id},
        )
        return [body if isinstance(body, dict) else json.loads(body) for body in rows]


async def settled_status(sessions: Sessions, response_id: str) -> str | None:
    """Poll (bounded, ~5 s) until the response leaves in_progress; its status then."""
    status = await stored_status(sessions, response_id)
    for _ in range(100):
        if status != "in_progress":
            break
        await asyncio.sleep(0.05)
        status = await stored_status(sessions, response_id)
    return status


async def test_text_answer_event_by_event(http: httpx.AsyncClient, upstream: TestUpstream) -> None:
    _, events = await post_stream(http, input="tell me a story", stream=True)
    response = check_stream(events)
    assert upstream.last_request().body["stream"] is True
    words = ["echo: ", "tell ", "me ", "a ", "story"]  # one upstream chunk per word
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(words),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, part_added = events[2], events[3]
    message_id = added["item"]["id"]
    assert message_id.startswith("msg_")
    assert added["item"] == {
        "id": message_id,
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    assert part_added["part"] == {
        "type": "output_text",
        "annotations": [],
        "logprobs": [],
        "text": "",
    }
    text_events = [event for event in events if event["type"].startswith("response.output_text")]
    assert all(
        (event["item_id"], event["output_index"], event["content_index"]) == (message_id, 0, 0)
        for event in text_events
    )
    assert [event["delta"] for event in text_events[:-1]] == words
    assert all(event["logprobs"] == [] for event in text_events)
    assert text_events[-1]["text"] == "echo: tell me a story"
    assert response["status"] == "completed"
    assert response["completed_at"] is not None
    assert response["usage"]["output_tokens"] == len(words)
    assert response["output"][0]["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "echo: tell me a story"
    assert await fetch(http, response["id"]) == response


async def test_framing(http: httpx.AsyncClient) -> None:
    answer, events = await post_stream(http, input="frame me", stream=True)
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["x-accel-buffering"] == "no"
    assert events[-1]["type"] == "response.completed"  # the stream closed right after it


async def test_content_type_is_event_stream(http: httpx.AsyncClient) -> None:
    answer, _ = await post_stream(http, input="typed", stream=True)
    assert answer.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize(
    ("stream_options", "input_text", "obfuscated"),
    [
        (None, "mask me", True),
        ({"include_obfuscation": True}, "mask me", True),
        ({"include_obfuscation": False}, "plain me", False),
        ({"include_obfuscation": False}, TOOL_INPUT, False),
        (None, TOOL_INPUT, True),
    ],
)
async def test_obfuscation(
    http: httpx.AsyncClient,
    stream_options: dict[str, bool] | None,
    input_text: str,
    obfuscated: bool,
) -> None:
    options = {} if stream_options is None else {"stream_options": stream_options}
    _, events = await post_stream(http, input=input_text, tools=TOOLS, stream=True, **options)
    check_stream(events)
    deltas = [event for event in events if event["type"] in DELTAS]
    assert deltas
    for event in deltas:
        if obfuscated:
            assert isinstance(event["obfuscation"], str)
            assert event["obfuscation"]
        else:
            assert "obfuscation" not in event
    assert not any("obfuscation" in event for event in events if event["type"] not in DELTAS)


@pytest.mark.parametrize("reasoning", [False, True])
async def test_parallel_function_calls(http: httpx.AsyncClient, reasoning: bool) -> None:
    prefix = "[reasoning:let me see] " if reasoning else ""
    _, events = await post_stream(http, input=prefix + TOOL_INPUT, tools=TOOLS, stream=True)
    response = check_stream(events)
    call_block = [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    reasoning_block = [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert squeeze(events) == [
        "response.created",
        "response.in_progress",
        *(reasoning_block if reasoning else []),
        *call_block,
        *call_block,
        "response.completed",
    ]
    assert response["status"] == "completed"
    calls = [item for item in response["output"] if item["type"] == "function_call"]
    assert [(c["name"], c["arguments"], c["status"]) for c in calls] == [
        ("get_weather", '{"city":"Oslo"}', "completed"),
        ("get_time", "{}", "completed"),
    ]
    first = 1 if reasoning else 0
    added = [event for event in events if event["type"] == "response.output_item.added"]
    assert [event["output_index"] for event in added] == [*range(first + 2)]
    for event, call in zip(added[first:], calls, strict=True):
        assert event["item"] == {**call, "status": "in_progress", "arguments": ""}
        assert call["id"].startswith("fc_")
        pieces = [
            piece["delta"]
            for piece in events
            if piece["type"] == "response.function_call_arguments.delta"
            and piece["item_id"] == call["id"]
        ]
        assert len(pieces) > 1  # the upstream sends arguments in fragments
        assert "".join(pieces) == call["arguments"]
    if reasoning:
        assert response["output"][0]["type"] == "reasoning"
        assert response["output"][0]["content"] == [
            {"type": "reasoning_text", "text": "let me see"}
        ]


async def test_reasoning_then_text(http: httpx.AsyncClient) -> None:
    _, events = await post_stream(http, input="[reasoning:think it through] hi", stream=True)
    response = check_stream(events)
    reasoning, message = response["output"]
    assert reasoning["type"] == "reasoning"
    assert reasoning["id"].startswith("rs_")
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "think it through"}]
    assert message["type"] == "message"
    assert message["content"][0]["text"] == "echo: [reasoning:think it through] hi"
    assert squeeze(events)[2:8] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert await fetch(http, response["id"]) == response


async def test_refusal(http: httpx.AsyncClient) -> None:
    _, events = await post_stream(http, input="do something bad [refuse]", stream=True)
    response = check_stream(events)
    assert squeeze(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[3]["part"] == {"type": "refusal", "refusal": ""}
    deltas = [event["delta"] for event in events if event["type"] == "response.refusal.delta"]
    assert len(deltas) == len(REFUSAL.split())
    [message] = response["output"]
    assert message["content"] == [{"type": "refusal", "refusal": REFUSAL}]
    assert await fetch(http, response["id"]) == response


@pytest.mark.parametrize(
    ("input_text", "limit", "text"),
    [
        ("cut me [length]", None, "partial"),
        (" ".join(f"w{n}" for n in range(30)), 16, "echo: " + " ".join(f"w{n}" for n in range(15))),
    ],
)
async def test_incomplete(
    http: httpx.AsyncClient, input_text: str, limit: int | None, text: str
) -> None:
    _, events = await post_stream(http, input=input_text, max_output_tokens=limit, stream=True)
    response = check_stream(events)
    assert events[-1]["type"] == "response.incomplete"
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["completed_at"] is None
    [message] = response["output"]
    assert message["status"] == "incomplete"
    assert message["content"][0]["text"] == text
    assert await fetch(http, response["id"]) == response


SDK_INPUTS = [
    ("hello sdk", "message", "echo: hello sdk"),
    ("[reasoning:hmm] hello", "message", "echo: [reasoning:hmm] hello"),
    (TOOL_INPUT, "function_call", ""),
    ("[refuse]", "message", ""),
]


@pytest.mark.parametrize(("input_text", "last_type", "output_text"), SDK_INPUTS)
async def test_sdk_iterates_a_raw_stream(
    client: AsyncOpenAI, input_text: str, last_type: str, output_text: str
) -> None:
    stream = await client.responses.create(
        model="test-model",
        input=input_text,
        tools=TOOLS,  # type: ignore[arg-type]
        stream=True,
    )
    events = [event async for event in stream]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output[-1].type == last_type
    assert final.output_text == output_text
    assert final == await client.responses.retrieve(final.id)


@pytest.mark.parametrize(("input_text", "last_type", "output_text"), SDK_INPUTS)
async def test_sdk_stream_helper(
    client: AsyncOpenAI, input_text: str, last_type: str, output_text: str
) -> None:
    snapshots: list[str] = []
    async with client.responses.stream(
        model="test-model",
        input=input_text,
        tools=TOOLS,  # type: ignore[arg-type]
    ) as stream:
        async for event in stream:
            if event.type in (
                "response.output_text.delta",
                "response.function_call_arguments.delta",
            ):
                snapshots.append(event.snapshot)
        final = await stream.get_final_response()
    assert final.status == "completed"
    assert final.output[-1].type == last_type
    assert final.output_text == output_text
    if output_text:
        assert snapshots[-1] == output_text  # the helper's running snapshot
    if last_type == "function_call":
        assert snapshots[-1] == "{}"
        arguments = [json.loads(call.arguments) for call in final.output]  # type: ignore[union-attr]
        assert arguments == [{"city": "Oslo"}, {}]
    stored = await client.responses.retrieve(final.id)
    assert stored.model_dump(exclude={"output"}) == final.model_dump(exclude={"output"})
    assert [item.id for item in stored.output] == [item.id for item in final.output]


async def test_sdk_stream_helper_continues_a_chain(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    async with client.responses.stream(model="test-model", input="turn 0") as stream:
        first = await stream.get_final_response()
    async with client.responses.stream(
        model="test-model", input="turn 1", previous_response_id=first.id
    ) as stream:
        second = await stream.get_final_response()
    assert upstream.last_request().body["messages"] == [
        {"role": "user", "content": "turn 0"},
        {"role": "assistant", "content": "echo: turn 0"},
        {"role": "user", "content": "turn 1"},
    ]
    assert second.previous_response_id == first.id
    assert second.output_text == "echo: turn 1"


async def test_row_is_in_progress_while_streaming(
    http: httpx.AsyncClient, sessions: Sessions
) -> None:
    body = {"model": "test-model", "input": "slowly now [sleep:100]", "stream": True}
    events: list[Event] = []
    async with http.stream("POST", "/responses", json=body) as answer:
        async for event in iter_events(answer):
            events.append(event)
            if event["type"] == "response.created":
                response_id = event["response"]["id"]
                assert await stored_status(sessions, response_id) == "in_progress"
                async with sessions() as session:
                    inputs = await session.scalar(
                        sa.text(
                            "SELECT count(*) FROM items WHERE response_id = :id AND side = 'input'"
                        ),
                        {"id": response_id},
                    )
                assert inputs == 1
                assert await stored_output(sessions, response_id) == []
    response = check_stream(events)
    assert await stored_status(sessions, response["id"]) == "completed"
    assert await stored_output(sessions, response["id"]) == response["output"]


@pytest.fixture
def upstream_hangups(upstream: TestUpstream, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Records each time the test upstream notices its client hung up mid-pause."""
    hangups: list[float] = []
    pause = upstream._pause

    async def recording_pause(seconds: float, receive: Any) -> None:
        try:
            await pause(seconds, receive)
        except _DropConnection:
            hangups.append(seconds)
            raise

    monkeypatch.setattr(upstream, "_pause", recording_pause)
    return hangups


LONG_INPUT = " ".join(f"word{n}" for n in range(20)) + " [sleep:300]"
LONG_ANSWER = "echo: " + LONG_INPUT


@pytest.mark.parametrize(("via", "read"), [("httpx", 2), ("sdk", 2), ("httpx", 0), ("sdk", 0)])
async def test_client_disconnect_cancels_the_response(
    http: httpx.AsyncClient,
    client: AsyncOpenAI,
    sessions: Sessions,
    upstream: TestUpstream,
    upstream_hangups: list[float],
    via: str,
    read: int,
) -> None:
    """What a cancelled stream keeps: status `cancelled`, the message as far as it was streamed
    (status `incomplete`, one output_text part holding the deltas emitted before the hang-up;
    no item at all when the client left before the first delta), no usage, no completed_at, no
    error, no incomplete_details."""
    received: list[str] = []
    response_id = ""
    stop = "response.output_text.delta" if read else "response.in_progress"
    if via == "httpx":
        body = {"model": "test-model", "input": LONG_INPUT, "stream": True}
        async with http.stream("POST", "/responses", json=body) as answer:
            async for event in iter_events(answer):
                response_id = response_id or event.get("response", {}).get("id", "")
                if event["type"] == "response.output_text.delta":
                    received.append(event["delta"])
                if event["type"] == stop and len(received) == read:
                    break
    else:
        stream = await client.responses.create(model="test-model", input=LONG_INPUT, stream=True)
        async for sdk_event in stream:
            if sdk_event.type == "response.created":
                response_id = sdk_event.response.id
            if sdk_event.type == "response.output_text.delta":
                received.append(sdk_event.delta)
            if sdk_event.type == stop and len(received) == read:
                break
        await stream.close()
    assert received == ["echo: ", "word0 "][:read]
    assert await settled_status(sessions, response_id) == "cancelled"
    stored = await stored_output(sessions, response_id)
    fetched = await fetch(http, response_id)
    assert fetched["status"] == "cancelled"
    assert fetched["output"] == stored
    assert fetched["usage"] is None
    assert fetched["completed_at"] is None
    assert fetched["error"] is None
    assert fetched["incomplete_details"] is None
    assert schema_errors("Response", wire_tolerant(fetched)) == []
    await upstream_hung_up(upstream, upstream_hangups)
    assert upstream.requests or read == 0
    if read == 0:
        assert stored == []
        return
    [message] = stored
    assert message["type"] == "message"
    assert message["status"] == "incomplete"
    [part] = message["content"]
    assert part["type"] == "output_text"
    assert part["text"].startswith("".join(received))
    assert LONG_ANSWER.startswith(part["text"])
    assert part["text"] != LONG_ANSWER


async def upstream_hung_up(upstream: TestUpstream, hangups: list[float]) -> None:
    """The upstream call was aborted too: the upstream saw its client hang up mid-answer, or
    (when the client left right after `response.in_progress`) the call was never made.

    Only calls carrying `LONG_INPUT` count: the test upstream is shared by the session, and a
    straggler from an earlier test (a worker's late retry, say) may land in this test's log."""
    for _ in range(100):
        if len(hangups) >= len(long_input_calls(upstream)):
            break
        await asyncio.sleep(0.05)
    assert len(hangups) == len(long_input_calls(upstream)) <= 1


def long_input_calls(upstream: TestUpstream) -> list[RecordedRequest]:
    return [
        request
        for request in upstream.requests
        if any(LONG_INPUT in str(m.get("content")) for m in request.body.get("messages", []))
    ]


async def lock_waiters(sessions: Sessions) -> int:
    async with sessions() as session:
        count: int = await session.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return count


async def poll_waiters(sessions: Sessions, wanted: int, tries: int = 100) -> None:
    for _ in range(tries):
        if await lock_waiters(sessions) == wanted:
            return
        await asyncio.sleep(0.05)


async def test_disconnect_during_the_final_write_still_settles(
    http: httpx.AsyncClient, sessions: Sessions
) -> None:
    """A row lock held by the test parks the server's final UPDATE until the client is gone."""
    # Chunks 50 ms apart: the stream outlasts the test's taking of the lock.
    body = {"model": "test-model", "input": "[sleep:50] nearly done", "stream": True}
    response_id = ""
    async with sessions() as locker:
        async with http.stream("POST", "/responses", json=body) as answer:
            async for event in iter_events(answer):
                if event["type"] == "response.created":
                    response_id = event["response"]["id"]
                    await locker.execute(
                        sa.text("SELECT id FROM responses WHERE id = :id FOR UPDATE"),
                        {"id": response_id},
                    )
                if event["type"] == "response.output_item.done":
                    await poll_waiters(sessions, 1)  # the server's final write waits on us
                    assert await lock_waiters(sessions) == 1
                    break
        # Give the server its chance to notice the hang-up (bounded: ~2 s). Its parked UPDATE
        # stays waiting in Postgres either way, so there is no earlier signal to poll for.
        await poll_waiters(sessions, 0, tries=40)
        await locker.rollback()
    assert await settled_status(sessions, response_id) in ("completed", "cancelled")


FAULTS = [
    # directive, stored error code (as for non-streaming faults), partial text kept (None: none)
    ("hi [drop]", "server_error", "echo: hi "),
    ("hi [malformed]", "server_error", None),
    ("hi [fail:500]", "server_error", None),
    ("hi [fail:429]", "rate_limit_exceeded", None),
]


@pytest.mark.parametrize(("input_text", "code", "partial"), FAULTS)
async def test_upstream_fault_mid_stream(
    http: httpx.AsyncClient, sessions: Sessions, input_text: str, code: str, partial: str | None
) -> None:
    _, events = await post_stream(http, input=input_text, stream=True)
    response = check_stream(events)
    assert events[-1]["type"] == "response.failed"
    error = response["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert response["usage"] is None
    assert response["completed_at"] is None
    if partial is None:
        assert response["output"] == []
    else:
        [message] = response["output"]
        assert message["status"] == "incomplete"
        assert message["content"][0]["text"] == partial
    async with sessions() as session:
        row = (
            await session.execute(
                sa.text("SELECT status, error FROM responses WHERE id = :id"),
                {"id": response["id"]},
            )
        ).one()
    assert row.status == "failed"
    assert row.error == error
    assert await stored_output(sessions, response["id"]) == response["output"]
    assert await fetch(http, response["id"]) == response


async def test_sdk_yields_failed_event_without_raising(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(model="test-model", input="hi [drop]", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"input": "hi", "temperature": 5}, 400, "temperature"),
        ({"input": "hi", "previous_response_id": "resp_missing"}, 400, "previous_response_id"),
        ({"input": "hi", "stream_options": {"bogus": True}}, 400, None),
        ({"input": "hi", "model": "dead-model", "background": "yes"}, 400, "background"),
    ],
)
async def test_request_errors_are_plain_json(
    http: httpx.AsyncClient,
    sessions: Sessions,
    project: Project,
    body: dict[str, Any],
    status: int,
    param: str | None,
) -> None:
    answer = await http.post("/responses", json={"model": "test-model", **body, "stream": True})
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param is not None:
        assert error["param"] == param
    async with sessions() as session:
        count = await session.scalar(
            sa.text("SELECT count(*) FROM responses WHERE project_id = :p"),
            {"p": project.project_id},
        )
    assert count == 0


async def test_store_false_streams_and_stores_nothing(
    http: httpx.AsyncClient, sessions: Sessions, project: Project
) -> None:
    _, events = await post_stream(http, input="forget me", store=False, stream=True)
    response = check_stream(events)
    assert response["store"] is False
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "echo: forget me"
    async with sessions() as session:
        for table in ("responses", "items"):
            count = await session.scalar(
                sa.text(f"SELECT count(*) FROM {table} WHERE project_id = :p"),
                {"p": project.project_id},
            )
            assert count == 0, table
    assert (await http.get(f"/responses/{response['id']}")).status_code == 404
