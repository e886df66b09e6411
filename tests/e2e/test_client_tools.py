"""Client-executed tools (local_shell, shell, apply_patch, computer): offered upstream as
functions, answered as their own call items (whole and streamed), their outputs replayed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from tests.conftest import Project
from tests.e2e.test_streaming import check_stream, parse_frames
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

Case = dict[str, Any]

CASES: dict[str, Case] = {
    "local_shell": {
        "tool": {"type": "local_shell"},
        "function": "local_shell",
        "arguments": {"command": ["ls", "-la"], "working_directory": "/tmp"},
        "item": "local_shell_call",
        "schema": "LocalShellToolCall",
        "check": lambda item: (
            item["action"]
            == {
                "type": "exec",
                "command": ["ls", "-la"],
                "env": {},
                "timeout_ms": None,
                "user": None,
                "working_directory": "/tmp",
            }
        ),
        # OpenAI's wire names the call by `id`; the output is a JSON string.
        "output": lambda call: {
            "type": "local_shell_call_output",
            "id": call["call_id"],
            "output": '{"stdout": "a b"}',
        },
        "result": '{"stdout": "a b"}',
    },
    "shell": {
        "tool": {"type": "shell", "environment": {"type": "local"}},
        "function": "shell",
        "arguments": {"commands": ["pwd", "ls"], "timeout_ms": 1000},
        "item": "shell_call",
        "schema": "FunctionShellCall",
        "check": lambda item: (
            item["action"]
            == {"commands": ["pwd", "ls"], "timeout_ms": 1000, "max_output_length": None}
            and item["environment"] == {"type": "local"}
        ),
        "output": lambda call: {
            "type": "shell_call_output",
            "call_id": call["call_id"],
            "output": [{"stdout": "/w", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}],
        },
        "result": '[{"stdout": "/w", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]',
    },
    "apply_patch": {
        "tool": {"type": "apply_patch"},
        "function": "apply_patch",
        "arguments": {"operation": "create_file", "path": "a.txt", "diff": "+hello"},
        "item": "apply_patch_call",
        "schema": "ApplyPatchToolCall",
        "check": lambda item: (
            item["operation"] == {"type": "create_file", "path": "a.txt", "diff": "+hello"}
        ),
        "output": lambda call: {
            "type": "apply_patch_call_output",
            "call_id": call["call_id"],
            "status": "completed",
            "output": "Created a.txt",
        },
        "result": "completed: Created a.txt",
    },
    "computer_use_preview": {
        "tool": {
            "type": "computer_use_preview",
            "environment": "linux",
            "display_width": 1024,
            "display_height": 768,
        },
        "function": "computer",
        "arguments": {"action": {"type": "click", "x": 10, "y": 20, "button": "left"}},
        "item": "computer_call",
        "schema": "ComputerToolCall",
        "check": lambda item: (
            item["action"] == {"type": "click", "x": 10, "y": 20, "button": "left"}
            and item["pending_safety_checks"] == []
        ),
        "output": lambda call: {
            "type": "computer_call_output",
            "call_id": call["call_id"],
            "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AAAA"},
        },
        "result": "The screenshot taken after the action follows.",
    },
    "computer": {
        "tool": {"type": "computer"},
        "function": "computer",
        "arguments": {
            "actions": [{"type": "type", "text": "hi"}, {"type": "keypress", "keys": ["ENTER"]}]
        },
        "item": "computer_call",
        "schema": "ComputerToolCall",
        "check": lambda item: (
            item["actions"]
            == [{"type": "type", "text": "hi"}, {"type": "keypress", "keys": ["ENTER"]}]
        ),
        "output": lambda call: {
            "type": "computer_call_output",
            "call_id": call["call_id"],
            "output": {"type": "computer_screenshot", "image_url": "https://example.com/s.png"},
        },
        "result": "The screenshot taken after the action follows.",
    },
}
KINDS = list(CASES)


def directive(case: Case) -> str:
    return f"do it [tool:{case['function']}:{json.dumps(case['arguments'])}]"


@pytest.fixture
async def http(rapport: RapportServer, project: Project) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(base_url=rapport.base_url, headers=headers, timeout=10) as http:
        yield http


async def create(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await http.post("/responses", json={"model": "test-model", **body})
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    assert schema_errors("Response", document) == []
    return document


@pytest.mark.parametrize("kind", KINDS)
async def test_offered_as_a_function_and_answered_as_its_call_item(
    http: httpx.AsyncClient, upstream: TestUpstream, kind: str
) -> None:
    case = CASES[kind]
    document = await create(http, input=directive(case), tools=[case["tool"]])
    [call] = document["output"]
    assert schema_errors(case["schema"], call) == []
    assert (call["type"], call["status"], call["call_id"]) == (case["item"], "completed", "call_0")
    assert case["check"](call), call
    assert document["tools"][0]["type"] == case["tool"]["type"]
    [offered] = upstream.last_request().body["tools"]
    assert offered["type"] == "function"
    assert offered["function"]["name"] == case["function"]
    parameters = offered["function"]["parameters"]
    assert set(case["arguments"]) <= set(parameters["properties"])


@pytest.mark.parametrize("kind", KINDS)
async def test_streamed_with_its_events(http: httpx.AsyncClient, kind: str) -> None:
    case = CASES[kind]
    body = {
        "model": "test-model",
        "input": directive(case),
        "tools": [case["tool"]],
        "stream": True,
    }
    async with http.stream("POST", "/responses", json=body) as answer:
        events = parse_frames((await answer.aread()).decode())
    final = check_stream(events)
    [call] = final["output"]
    assert call["type"] == case["item"]
    assert case["check"](call), call
    kinds = [event["type"] for event in events[2:-1]]
    if kind == "shell":
        command = ["added", "delta", "done"]
        assert kinds == [
            "response.output_item.added",
            *(f"response.shell_call_command.{step}" for step in command),
            *(f"response.shell_call_command.{step}" for step in command),
            "response.output_item.done",
        ]
        assert [e["command"] for e in events if e["type"].endswith("command.done")] == ["pwd", "ls"]
    else:
        assert kinds == ["response.output_item.added", "response.output_item.done"]


@pytest.mark.parametrize("kind", KINDS)
async def test_the_output_goes_back_as_a_tool_message(
    http: httpx.AsyncClient, upstream: TestUpstream, kind: str
) -> None:
    case = CASES[kind]
    first = await create(http, input=directive(case), tools=[case["tool"]])
    [call] = first["output"]
    second = await create(
        http, previous_response_id=first["id"], tools=[case["tool"]], input=[case["output"](call)]
    )
    messages = upstream.last_request().body["messages"]
    assistant, tool = (m for m in messages if m["role"] in ("assistant", "tool"))
    [sent_call] = assistant["tool_calls"]
    assert sent_call["id"] == call["call_id"]
    assert sent_call["function"]["name"] == case["function"]
    assert json.loads(sent_call["function"]["arguments"]).items() >= case["arguments"].items()
    assert tool == {"role": "tool", "tool_call_id": call["call_id"], "content": case["result"]}
    if kind.startswith("computer"):  # the screenshot follows the tool messages as an image
        image = messages[-1]
        assert image["role"] == "user"
        assert image["content"][0]["type"] == "image_url"
    else:
        assert second["output"][0]["content"][0]["text"] == f"done: {case['result']}"
    listed = (await http.get(f"/responses/{second['id']}/input_items")).json()
    assert schema_errors("ResponseItemList", listed) == []
    [stored] = listed["data"]
    assert stored["type"] == f"{case['item']}_output"
    assert stored["call_id"] == call["call_id"]


async def test_calls_and_outputs_sent_as_input_replay_statelessly(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    """Codex's way with `store: false`: the whole history comes back as input each turn."""
    case = CASES["local_shell"]
    first = await create(http, input=directive(case), tools=[case["tool"]], store=False)
    [call] = first["output"]
    history = [
        {"type": "message", "role": "user", "content": directive(case)},
        call,
        # Codex answers a local_shell_call with a function_call_output.
        {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"},
    ]
    await create(http, input=history, tools=[case["tool"]], store=False)
    messages = upstream.last_request().body["messages"]
    assert messages[-2]["tool_calls"][0]["function"]["name"] == "local_shell"
    assert messages[-1] == {"role": "tool", "tool_call_id": call["call_id"], "content": "ok"}


async def test_an_output_without_its_call_is_refused(http: httpx.AsyncClient) -> None:
    stray = {"type": "shell_call_output", "call_id": "call_x", "output": []}
    answer = await http.post("/responses", json={"model": "test-model", "input": [stray]})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "No tool call found for function call output with call_id call_x."
    )


async def test_a_hosted_shell_container_is_refused(http: httpx.AsyncClient) -> None:
    tool = {"type": "shell", "environment": {"type": "container_auto"}}
    answer = await http.post(
        "/responses", json={"model": "test-model", "input": "x", "tools": [tool]}
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == ("tools[0].environment", "unsupported_parameter")


async def test_a_conversation_carries_calls_and_outputs(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    case = CASES["apply_patch"]
    conversation = await client.conversations.create()
    first = await client.responses.create(
        model="test-model",
        conversation=conversation.id,
        input=directive(case),
        tools=[case["tool"]],
    )
    [call] = first.output
    assert call.type == "apply_patch_call"
    output: Any = case["output"]({"call_id": call.call_id})
    await client.responses.create(
        model="test-model", conversation=conversation.id, input=[output], tools=[case["tool"]]
    )
    messages = upstream.last_request().body["messages"]
    assert messages[-2]["tool_calls"][0]["id"] == call.call_id
    assert messages[-1]["content"] == case["result"]
    items = [item.type async for item in client.conversations.items.list(conversation.id)]
    assert {"apply_patch_call", "apply_patch_call_output"} <= set(items)


async def test_a_background_run_answers_with_the_call_item(client: AsyncOpenAI) -> None:
    case = CASES["shell"]
    queued = await client.responses.create(
        model="test-model", input=directive(case), tools=[case["tool"]], background=True
    )
    for _ in range(200):
        done = await client.responses.retrieve(queued.id)
        if done.status not in ("queued", "in_progress"):
            break
        await asyncio.sleep(0.02)
    assert done.status == "completed"
    [call] = done.output
    assert call.type == "shell_call"
    assert call.action.commands == ["pwd", "ls"]


async def test_parallel_tool_calls_false_holds_client_calls_to_one(
    http: httpx.AsyncClient,
) -> None:
    tools = [CASES["shell"]["tool"], CASES["local_shell"]["tool"]]
    both = f"{directive(CASES['shell'])} {directive(CASES['local_shell'])}"
    document = await create(http, input=both, tools=tools, parallel_tool_calls=False)
    assert [item["type"] for item in document["output"]] == ["shell_call"]
    body = {"model": "test-model", "input": both, "tools": tools, "stream": True}
    async with http.stream("POST", "/responses", json={**body, "parallel_tool_calls": False}) as a:
        events = parse_frames((await a.aread()).decode())
    assert [item["type"] for item in check_stream(events)["output"]] == ["shell_call"]
