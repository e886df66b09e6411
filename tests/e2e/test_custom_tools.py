"""`custom` tools: free-text calls, carried upstream as one-string functions."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import Project
from tests.e2e.test_streaming import check_stream, parse_frames
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

TOOLS: Any = [
    {
        "type": "custom",
        "name": "shell",
        "description": "Runs a command.",
        "format": {"type": "grammar", "syntax": "regex", "definition": "[a-z -]+"},
    },
    {"type": "function", "name": "clock", "parameters": {"type": "object"}},
]
CALL = '[tool:shell:{"input": "ls -la"}]'


async def test_a_custom_call_comes_back_as_free_text(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    raw = await client.responses.with_raw_response.create(
        model="test-model", input=f"list files {CALL}", tools=TOOLS
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    call = document["output"][0]
    assert call["type"] == "custom_tool_call"
    assert call["id"].startswith("ctc_")
    assert (call["name"], call["input"], call["call_id"]) == ("shell", "ls -la", "call_0")
    assert document["tools"][0]["type"] == "custom"
    sent = upstream.last_request().body["tools"][0]["function"]
    assert sent["name"] == "shell"
    assert sent["parameters"]["properties"] == {"input": {"type": "string"}}
    assert "[a-z -]+" in sent["description"]  # the grammar is described, not enforced


async def test_its_output_goes_back_as_a_tool_message(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await client.responses.create(model="test-model", input=CALL, tools=TOOLS)
    call = first.output[0]
    assert call.type == "custom_tool_call"
    await client.responses.create(
        model="test-model",
        previous_response_id=first.id,
        tools=TOOLS,
        input=[{"type": "custom_tool_call_output", "call_id": call.call_id, "output": "a b"}],
    )
    assistant, tool = upstream.last_request().body["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == call.call_id
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"input": "ls -la"}
    assert tool == {"role": "tool", "tool_call_id": call.call_id, "content": "a b"}
    items = [item async for item in client.responses.input_items.list(first.id)]
    assert items[0].type == "message"


async def test_a_named_custom_tool_choice_forces_that_function_upstream(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    raw = await client.responses.with_raw_response.create(
        model="test-model",
        input=f"list files {CALL}",
        tools=TOOLS,
        tool_choice={"type": "custom", "name": "shell"},
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    assert document["tool_choice"] == {"type": "custom", "name": "shell"}
    sent = upstream.last_request().body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "shell"}}


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"type": "custom", "name": "clock"}, "Tool choice 'custom' not found"),
        ({"type": "function", "name": "shell"}, "Tool choice 'function' not found"),
        ({"type": "custom", "name": "nope"}, "Tool choice 'custom' not found"),
    ],
    ids=["custom-names-a-function", "function-names-a-custom", "unknown"],
)
async def test_a_named_choice_must_match_a_tool_of_its_type(
    client: AsyncOpenAI, upstream: TestUpstream, choice: Any, message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="test-model", input="x", tools=TOOLS, tool_choice=choice
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["param"], error["code"]) == ("tool_choice", "invalid_value")
    assert error["message"].startswith(message)
    assert upstream.requests == []


async def test_an_unanswered_or_unknown_custom_call_is_refused(client: AsyncOpenAI) -> None:
    stray: Any = [{"type": "custom_tool_call_output", "call_id": "call_nope", "output": "x"}]
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="test-model", input=stray, tools=TOOLS)
    error: Any = refused.value.body
    assert error["message"] == "No tool call found for function call output with call_id call_nope."


async def test_custom_calls_stream_their_input(rapport: RapportServer, project: Project) -> None:
    headers = {"authorization": f"Bearer {project.secret}"}
    body = {"model": "test-model", "input": CALL, "tools": TOOLS, "stream": True}
    async with (
        httpx.AsyncClient(base_url=rapport.base_url, headers=headers, timeout=10) as http,
        http.stream("POST", "/responses", json=body) as answer,
    ):
        events = parse_frames((await answer.aread()).decode())
    final = check_stream(events)
    kinds = [event["type"] for event in events]
    assert "response.custom_tool_call_input.delta" in kinds
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == "ls -la"
    assert final["output"][0]["type"] == "custom_tool_call"
    assert final["output"][0]["input"] == "ls -la"
