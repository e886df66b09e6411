"""MCP tools Rapport runs itself: listing, calls, approvals, errors, streaming, background,
credentials — the official SDK against Rapport, a real MCP server and the test upstream.

The test upstream calls the tool its prompt names (`[tool:NAME:JSON]`) and, once the messages
end with tool results, answers "done: <results>", so one create exercises the whole loop:
list → model → MCP call → model → answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from websockets.asyncio.client import connect

from tests.conftest import Project, sdk, server_settings
from tests.e2e.test_streaming import check_stream, post_stream
from tests.harness import RapportServer
from tests.log_capture import written_logs
from tests.mcp_server import McpTestServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

SECRET_HEADER = "mcp-header-secret-0f9e8d7c6b5a"
SECRET_TOKEN = "mcp-bearer-secret-a1b2c3d4e5f6"
ADD = '[tool:add:{"a": 2, "b": 3}]'


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpTestServer]:
    with McpTestServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_mcp(mcp: McpTestServer) -> None:
    mcp.reset()


@pytest.fixture(scope="module")
def tools_rapport(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    """A Rapport that may reach tools on loopback, with a short per-call timeout."""
    settings = server_settings(
        database_url, upstream, allowed_tool_hosts=("127.0.0.1",), tool_timeout_seconds=1.5
    )
    server = RapportServer(settings).start()
    yield server
    server.stop()


@pytest.fixture
def client(tools_rapport: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(tools_rapport, project)


def mcp_tool(url: str, **fields: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "calc", "server_url": url, **fields}


def never(url: str, **fields: Any) -> list[dict[str, Any]]:
    return [mcp_tool(url, require_approval="never", **fields)]


async def create_raw(client: AsyncOpenAI, **body: Any) -> dict[str, Any]:
    raw = await client.responses.with_raw_response.create(model="test-model", **body)
    document: dict[str, Any] = raw.http_response.json()
    assert schema_errors("Response", document) == []
    return document


async def test_a_call_runs_between_two_model_turns(
    client: AsyncOpenAI, mcp: McpTestServer, upstream: TestUpstream
) -> None:
    document = await create_raw(client, input=f"add {ADD}", tools=never(mcp.url))
    listing, call, answer = document["output"]
    assert listing["type"] == "mcp_list_tools"
    assert listing["id"].startswith("mcpl_")
    assert {tool["name"] for tool in listing["tools"]} == {
        "add",
        "echo",
        "lookup",
        "explode",
        "whoami",
        "guarded",
        "slow",
    }
    assert call["type"] == "mcp_call"
    assert call["id"].startswith("mcp_")
    assert (call["server_label"], call["name"], call["status"]) == ("calc", "add", "completed")
    assert json.loads(call["arguments"]) == {"a": 2, "b": 3}
    assert (call["output"], call["error"]) == ("5", None)
    assert answer["content"][0]["text"] == "done: 5"
    assert mcp.calls["add"] == 1
    first, second = upstream.requests
    offered = {tool["function"]["name"] for tool in first.body["tools"]}
    assert offered == {"add", "echo", "lookup", "explode", "whoami", "guarded", "slow"}
    assert second.body["messages"][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "5"}
    assert second.body["messages"][-2]["tool_calls"][0]["function"]["name"] == "add"
    # Usage adds up both model calls.
    assert document["usage"]["input_tokens"] > 0
    assert document["usage"]["total_tokens"] == (
        document["usage"]["input_tokens"] + document["usage"]["output_tokens"]
    )
    echoed = document["tools"][0]
    assert echoed["type"] == "mcp"
    assert echoed["server_label"] == "calc"
    stored = await client.responses.retrieve(document["id"])
    assert [item.type for item in stored.output] == ["mcp_list_tools", "mcp_call", "message"]


async def test_the_listing_is_kept_for_later_turns(
    client: AsyncOpenAI, mcp: McpTestServer, upstream: TestUpstream
) -> None:
    first = await client.responses.create(
        model="test-model", input=f"add {ADD}", tools=never(mcp.url)
    )
    second = await client.responses.create(
        model="test-model",
        input='again [tool:add:{"a": 10, "b": 1}]',
        tools=never(mcp.url),
        previous_response_id=first.id,
    )
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    assert second.output_text == "done: 11"
    assert mcp.calls["add"] == 2
    history = upstream.requests[2].body["messages"]
    # The earlier call and its result went back as a tool call and a tool message.
    assert {"role": "tool", "tool_call_id": first.output[1].id, "content": "5"} in history


async def test_allowed_tools_narrows_the_listing(
    client: AsyncOpenAI, mcp: McpTestServer, upstream: TestUpstream
) -> None:
    tools = never(mcp.url, allowed_tools=["echo"])
    response = await client.responses.create(
        model="test-model", input='[tool:echo:{"text": "hi"}]', tools=tools
    )
    assert [tool.name for tool in response.output[0].tools] == ["echo"]  # type: ignore[union-attr]
    assert response.output_text == "done: echoed hi"
    assert [t["function"]["name"] for t in upstream.requests[0].body["tools"]] == ["echo"]
    filtered = never(mcp.url, allowed_tools={"read_only": True})
    response = await client.responses.create(model="test-model", input="hi", tools=filtered)
    assert [tool.name for tool in response.output[0].tools] == ["lookup"]  # type: ignore[union-attr]


async def test_approval_then_the_call_on_the_next_turn(
    client: AsyncOpenAI, mcp: McpTestServer
) -> None:
    first = await create_raw(client, input=f"add {ADD}", tools=[mcp_tool(mcp.url)])
    assert first["status"] == "completed"
    _, request = first["output"]
    assert request["type"] == "mcp_approval_request"
    assert request["id"].startswith("mcpr_")
    assert (request["server_label"], request["name"]) == ("calc", "add")
    assert mcp.calls["add"] == 0  # nothing runs before the approval
    second = await create_raw(
        client,
        previous_response_id=first["id"],
        tools=[mcp_tool(mcp.url)],
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
        ],
    )
    call, answer = second["output"]
    assert call["type"] == "mcp_call"
    assert call["approval_request_id"] == request["id"]
    assert call["output"] == "5"
    assert answer["content"][0]["text"] == "done: 5"
    assert mcp.calls["add"] == 1
    items = await client.responses.input_items.list(second["id"])
    assert [item.type for item in items.data] == ["mcp_approval_response"]


async def test_a_denied_call_is_told_to_the_model(
    client: AsyncOpenAI, mcp: McpTestServer, upstream: TestUpstream
) -> None:
    first = await client.responses.create(
        model="test-model", input=f"add {ADD}", tools=[mcp_tool(mcp.url)]
    )
    request = first.output[1]
    second = await client.responses.create(
        model="test-model",
        previous_response_id=first.id,
        tools=[mcp_tool(mcp.url)],
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": request.id,
                "approve": False,
                "reason": "not now",
            }
        ],
    )
    assert [item.type for item in second.output] == ["message"]
    assert "declined" in second.output_text
    assert "not now" in second.output_text
    assert mcp.calls["add"] == 0


async def test_approval_filters(client: AsyncOpenAI, mcp: McpTestServer) -> None:
    policy = {"never": {"tool_names": ["add"]}}
    tools = [mcp_tool(mcp.url, require_approval=policy)]
    runs = await client.responses.create(model="test-model", input=ADD, tools=tools)
    assert [item.type for item in runs.output] == ["mcp_list_tools", "mcp_call", "message"]
    asks = await client.responses.create(
        model="test-model", input='[tool:echo:{"text": "x"}]', tools=tools
    )
    assert [item.type for item in asks.output] == ["mcp_list_tools", "mcp_approval_request"]


async def test_approval_in_a_conversation_and_by_replayed_input(
    client: AsyncOpenAI, mcp: McpTestServer
) -> None:
    conversation = await client.conversations.create()
    tools = [mcp_tool(mcp.url)]
    first = await client.responses.create(
        model="test-model", input=ADD, tools=tools, conversation=conversation.id
    )
    request = first.output[1]
    answer = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    second = await client.responses.create(
        model="test-model", input=[answer], tools=tools, conversation=conversation.id
    )
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    # Stateless: the whole history replayed, store false, the approval answered in it.
    replay = [item.model_dump(exclude_none=True) for item in first.output]
    third = await client.responses.create(
        model="test-model",
        store=False,
        tools=tools,
        input=[{"role": "user", "content": ADD}, *replay, answer],
    )
    assert [item.type for item in third.output] == ["mcp_call", "message"]
    assert third.output_text == "done: 5"
    assert mcp.calls["add"] == 2


async def test_an_unknown_approval_is_a_400(client: AsyncOpenAI, mcp: McpTestServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="test-model",
            tools=[mcp_tool(mcp.url)],
            input=[
                {"type": "mcp_approval_response", "approval_request_id": "mcpr_x", "approve": True}
            ],
        )
    assert caught.value.body["param"] == "input"  # type: ignore[index]


async def test_tool_errors_and_timeouts_are_results(
    client: AsyncOpenAI, mcp: McpTestServer
) -> None:
    failed = await create_raw(client, input="[tool:explode:{}]", tools=never(mcp.url))
    call = failed["output"][1]
    assert (call["status"], call["output"]) == ("failed", None)
    assert call["error"]["type"] == "mcp_tool_execution_error"
    assert failed["status"] == "completed"
    assert failed["output"][2]["content"][0]["text"].startswith("done: The tool call failed")
    slow = await create_raw(client, input='[tool:slow:{"ms": 4000}]', tools=never(mcp.url))
    call = slow["output"][1]
    assert call["status"] == "failed"
    assert call["error"]["type"] == "mcp_protocol_error"
    assert "did not answer within" in call["error"]["message"]


async def test_an_unreachable_server_fails_its_listing(client: AsyncOpenAI) -> None:
    document = await create_raw(client, input="hello", tools=never("http://127.0.0.1:9/mcp"))
    listing = document["output"][0]
    assert listing["type"] == "mcp_list_tools"
    assert listing["tools"] == []
    assert "could not be reached" in listing["error"]
    assert document["status"] == "completed"


async def test_the_sse_transport(client: AsyncOpenAI, mcp: McpTestServer) -> None:
    response = await client.responses.create(
        model="test-model", input=ADD, tools=never(mcp.sse_url)
    )
    assert response.output_text == "done: 5"


async def test_streamed_events_in_openai_order(
    tools_rapport: RapportServer, project: Project, mcp: McpTestServer
) -> None:
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(
        base_url=tools_rapport.base_url, headers=headers, timeout=10
    ) as http:
        _, events = await post_stream(http, input=f"add {ADD}", tools=never(mcp.url), stream=True)
    final = check_stream(events)
    kinds = [event["type"] for event in events]
    listing = kinds.index("response.mcp_list_tools.in_progress")
    assert kinds[listing - 1 : listing + 3] == [
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
    ]
    call = kinds.index("response.mcp_call_arguments.delta")
    assert kinds[call - 1 : call + 5] == [
        "response.output_item.added",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.output_item.done",
    ]
    assert "response.function_call_arguments.delta" not in kinds  # hosted calls stream as theirs
    assert [item["type"] for item in final["output"]] == ["mcp_list_tools", "mcp_call", "message"]
    assert final["output"][2]["content"][0]["text"] == "done: 5"


async def test_max_tool_calls_and_parallel_calls(client: AsyncOpenAI, mcp: McpTestServer) -> None:
    two = '[tool:add:{"a": 1, "b": 1}] [tool:echo:{"text": "z"}]'
    both = await client.responses.create(model="test-model", input=two, tools=never(mcp.url))
    assert [item.type for item in both.output] == [
        "mcp_list_tools",
        "mcp_call",
        "mcp_call",
        "message",
    ]
    assert both.output_text == "done: 2; echoed z"
    capped = await client.responses.create(
        model="test-model", input=two, tools=never(mcp.url), max_tool_calls=1
    )
    assert [item.type for item in capped.output] == ["mcp_list_tools", "mcp_call", "message"]
    serial = await client.responses.create(
        model="test-model", input=two, tools=never(mcp.url), parallel_tool_calls=False
    )
    assert serial.output_text == "done: 2; echoed z"


async def test_credentials_reach_the_server_only(
    client: AsyncOpenAI,
    mcp: McpTestServer,
    upstream: TestUpstream,
    sessions: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tools = never(mcp.url, headers={"X-Api-Key": SECRET_HEADER}, authorization=SECRET_TOKEN)
    foreground = await create_raw(client, input=ADD, tools=tools)
    background = await client.responses.create(
        model="test-model", input=ADD, tools=tools, background=True
    )
    while background.status in ("queued", "in_progress"):
        await asyncio.sleep(0.05)
        background = await client.responses.retrieve(background.id)
    assert background.output_text == "done: 5"
    assert any(h.get("x-api-key") == SECRET_HEADER for h in mcp.headers)
    assert any(h.get("authorization") == f"Bearer {SECRET_TOKEN}" for h in mcp.headers)
    seen = [
        json.dumps(foreground),
        background.model_dump_json(),
        json.dumps([request.body for request in upstream.requests]),
        "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records),
    ]
    async with sessions() as session:
        rows = await session.execute(
            sa.text("select request::text, params::text from responses where id = :id"),
            {"id": background.id},
        )
        seen.extend(str(value) for value in rows.one())
    for text in seen:
        assert SECRET_HEADER not in text
        assert SECRET_TOKEN not in text
    assert foreground["tools"][0]["headers"] is None
    assert "authorization" not in foreground["tools"][0]


def readable_credentials(text: str) -> list[str]:
    """Pieces of the credentials still readable in `text`: 12 characters of either secret in
    any case, or the base64 the server wrote of its headers."""
    pieces = [SECRET_HEADER[:12], SECRET_TOKEN[:12]]
    pieces += [base64.b64encode(f"Bearer {SECRET_TOKEN}".encode()).decode()[:16]]
    pieces += [base64.b64encode(SECRET_HEADER.encode()).decode()[:16]]
    return [piece for piece in pieces if piece.lower() in text.lower()]


async def test_credentials_a_server_echoes_are_scrubbed(
    client: AsyncOpenAI, mcp: McpTestServer, upstream: TestUpstream
) -> None:
    with written_logs() as logged:
        seen = await _echoed_credentials(client, mcp, upstream)
    assert '"logger":"mcp.client' in logged.getvalue()  # the MCP client's DEBUG lines
    seen.append(logged.getvalue())
    assert mcp.calls["whoami"] == 2
    assert mcp.calls["guarded"] == 1
    assert readable_credentials("\n".join(seen)) == []


async def _echoed_credentials(
    client: AsyncOpenAI, mcp: McpTestServer, upstream: TestUpstream
) -> list[str]:
    """A whole, a streamed and a background response whose MCP server quotes the
    credentials it got (in its output and in an error), and everything they showed."""
    tools = never(mcp.url, headers={"X-Api-Key": SECRET_HEADER}, authorization=SECRET_TOKEN)
    whole = await create_raw(client, input="[tool:whoami:{}]", tools=tools)
    call = next(item for item in whole["output"] if item["type"] == "mcp_call")
    assert call["output"].startswith("you are [redacted]")
    assert whole["output"][-1]["content"][0]["text"].startswith("done: you are [redacted]")
    stream = await client.responses.create(
        model="test-model", input="[tool:guarded:{}]", tools=tools, stream=True
    )
    events = [event.model_dump() async for event in stream]
    failed = next(
        e["item"]
        for e in events
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "mcp_call"
    )
    assert failed["status"] == "failed"
    assert "access denied for [redacted]" in json.dumps(failed["error"])
    background = await client.responses.create(
        model="test-model", input="[tool:whoami:{}]", tools=tools, background=True
    )
    while background.status in ("queued", "in_progress"):
        await asyncio.sleep(0.05)
        background = await client.responses.retrieve(background.id)
    assert background.output_text.startswith("done: you are [redacted]")
    replay = await client.responses.retrieve(background.id, stream=True, starting_after=0)
    replayed = [event.model_dump() async for event in replay]
    stored = await client.responses.retrieve(events[-1]["response"]["id"])
    return [
        json.dumps(whole),
        json.dumps(events),
        json.dumps(replayed),
        stored.model_dump_json(),
        background.model_dump_json(),
        json.dumps([request.body for request in upstream.requests]),  # what the model read
    ]


async def test_a_background_run_is_cancelled_mid_call(
    client: AsyncOpenAI, mcp: McpTestServer
) -> None:
    slow = '[tool:slow:{"ms": 1200}]'
    response = await client.responses.create(
        model="test-model", input=slow, tools=never(mcp.url), background=True
    )
    for _ in range(200):
        if mcp.calls["slow"]:
            break
        await asyncio.sleep(0.02)
    assert mcp.calls["slow"] == 1
    cancelled = await client.responses.cancel(response.id)
    assert cancelled.status == "cancelled"
    await asyncio.sleep(1.5)
    after = await client.responses.retrieve(response.id)
    assert after.status == "cancelled"
    assert "message" not in [item.type for item in after.output]  # the model never answered


async def test_refused_hosts_and_connectors(
    rapport: RapportServer, project: Project, mcp: McpTestServer
) -> None:
    plain = sdk(rapport, project)  # the default server allows no private tool host
    for url in (mcp.url, "http://169.254.169.254/mcp", "http://localhost:1/mcp", "ftp://x/mcp"):
        with pytest.raises(openai.BadRequestError) as caught:
            await plain.responses.create(model="test-model", input="hi", tools=never(url))
        assert caught.value.body["param"] == "tools[0].server_url", url  # type: ignore[index]
    assert mcp.calls.total() == 0
    assert mcp.headers == []
    connector = {"type": "mcp", "server_label": "g", "connector_id": "connector_gmail"}
    with pytest.raises(openai.BadRequestError) as caught:
        await plain.responses.create(model="test-model", input="hi", tools=[connector])
    assert caught.value.body["param"] == "tools[0].connector_id"  # type: ignore[index]
    twice = [mcp_tool(mcp.url), mcp_tool(mcp.url)]
    with pytest.raises(openai.BadRequestError) as caught:
        await plain.responses.create(model="test-model", input="hi", tools=twice)
    assert caught.value.body["param"] == "tools[1].server_label"  # type: ignore[index]


async def test_tool_choice_forces_the_first_call_only(
    client: AsyncOpenAI, mcp: McpTestServer, upstream: TestUpstream
) -> None:
    choice: Any = {"type": "mcp", "server_label": "calc", "name": "add"}
    response = await create_raw(client, input=ADD, tools=never(mcp.url), tool_choice=choice)
    assert response["tool_choice"] == choice
    first, second = upstream.requests
    assert first.body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert "tool_choice" not in second.body  # free to answer once it has the result
    server_wide: Any = {"type": "mcp", "server_label": "calc"}
    await client.responses.create(
        model="test-model", input=ADD, tools=never(mcp.url), tool_choice=server_wide
    )
    forced = upstream.requests[2].body["tool_choice"]
    assert forced["type"] == "allowed_tools"
    assert forced["allowed_tools"]["mode"] == "required"
    assert len(forced["allowed_tools"]["tools"]) == 7  # every tool of the server
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="test-model",
            input="hi",
            tools=never(mcp.url),
            tool_choice={"type": "mcp", "server_label": "other"},
        )
    assert caught.value.body["param"] == "tool_choice"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="test-model",
            input="hi",
            tools=never(mcp.url),
            tool_choice={"type": "web_search_preview"},
        )
    assert caught.value.body["param"] == "tool_choice"  # type: ignore[index]


async def test_hosted_calls_over_websocket_mode(
    tools_rapport: RapportServer, project: Project, mcp: McpTestServer
) -> None:
    """The same loop over a WebSocket: listing, call and answer as events on the socket, then
    a second turn on it that finds the listing in its context (store: false, kept by the
    connection)."""
    from tests.e2e.test_websocket import bearer, completed, socket_url

    async with connect(socket_url(tools_rapport), additional_headers=bearer(project.secret)) as ws:
        first = await completed(ws, input=ADD, tools=never(mcp.url), store=False)
        assert [item["type"] for item in first["output"]] == [
            "mcp_list_tools",
            "mcp_call",
            "message",
        ]
        assert first["output"][2]["content"][0]["text"] == "done: 5"
        second = await completed(
            ws,
            input='[tool:add:{"a": 1, "b": 6}]',
            tools=never(mcp.url),
            store=False,
            previous_response_id=first["id"],
        )
    assert [item["type"] for item in second["output"]] == ["mcp_call", "message"]
    assert second["output"][1]["content"][0]["text"] == "done: 7"
    assert mcp.calls["add"] == 2
