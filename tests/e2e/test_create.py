"""POST /v1/responses end to end: what the SDK gets, what the upstream saw, what was stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import UPSTREAM_KEY, Project
from tests.openapi import schema_errors
from tests.upstream import TestUpstream


async def create_raw(client: AsyncOpenAI, **params: Any) -> dict[str, Any]:
    raw = await client.responses.with_raw_response.create(**params)
    return json.loads(raw.http_response.text)


async def test_answer_matches_openais_schema_and_wire_shape(client: AsyncOpenAI) -> None:
    body = await create_raw(client, model="test-model", input="hello there", metadata={"k": "v"})
    assert schema_errors("Response", body) == []
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["id"].startswith("resp_")
    assert isinstance(body["created_at"], int)
    assert isinstance(body["completed_at"], int)
    assert body["store"] is True
    assert "output_text" not in body  # an SDK convenience, never on the wire
    assert "conversation" not in body  # omitted, not null, when there is none
    assert body["metadata"] == {"k": "v"}
    [message] = body["output"]
    assert message["id"].startswith("msg_")
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["status"] == "completed"
    assert message["content"] == [
        {"type": "output_text", "annotations": [], "logprobs": [], "text": "echo: hello there"}
    ]
    assert body["usage"] == {
        "input_tokens": 5,
        "output_tokens": 3,
        "total_tokens": 8,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }


async def test_defaults_are_echoed_as_openai_does(client: AsyncOpenAI) -> None:
    body = await create_raw(client, model="test-model", input="hi")
    assert body["temperature"] == 1.0
    assert body["top_p"] == 1.0
    assert body["top_logprobs"] == 0
    assert body["tool_choice"] == "auto"
    assert body["tools"] == []
    assert body["truncation"] == "disabled"
    assert body["parallel_tool_calls"] is True
    assert body["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    assert body["reasoning"] == {"effort": None, "summary": None}
    assert body["service_tier"] == "default"
    assert body["instructions"] is None
    assert body["previous_response_id"] is None
    assert body["error"] is None
    assert body["incomplete_details"] is None
    assert body["background"] is False
    assert body["metadata"] == {}


async def test_parameters_reach_the_upstream(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    response = await client.responses.create(
        model="test-model",
        input="map these",
        instructions="You are terse.",
        max_output_tokens=64,
        temperature=0.3,
        top_p=0.9,
        user="end-user-1",
        safety_identifier="hashed-user",
        prompt_cache_key="cache-1",
        service_tier="flex",
        extra_body={"top_k": 5},
    )
    sent = upstream.last_request()
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.body["model"] == "test-model"
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "map these"},
    ]
    for key, value in {
        "max_completion_tokens": 64,
        "temperature": 0.3,
        "top_p": 0.9,
        "user": "end-user-1",
        "safety_identifier": "hashed-user",
        "prompt_cache_key": "cache-1",
        "service_tier": "flex",
    }.items():
        assert sent.body[key] == value, key
    # Sent only where the route opts in (tests/e2e/test_route_options.py).
    assert "top_k" not in sent.body
    assert "metadata" not in sent.body
    assert "store" not in sent.body
    assert response.instructions == "You are terse."
    assert response.temperature == 0.3
    assert response.service_tier == "flex"


async def test_item_list_input_with_every_part_type(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    await client.responses.create(
        model="test-model",
        input=[
            {"role": "developer", "content": "be brief"},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,AAAA",
                        "detail": "low",
                    },
                    {
                        "type": "input_file",
                        "filename": "a.txt",
                        "file_data": "data:text/plain;base64,aGk=",
                    },
                ],
            },
            {"role": "assistant", "content": "earlier answer"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thought"}]},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "42"},
            {"role": "user", "content": "and now?"},
        ],
    )
    assert upstream.last_request().body["messages"] == [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                },
                {
                    "type": "file",
                    "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGk="},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "earlier answer",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "user", "content": "and now?"},
    ]


async def test_stored_rows(
    client: AsyncOpenAI, project: Project, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.responses.create(
        model="test-model",
        input=[{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    )
    async with sessions() as session:
        row = (
            await session.execute(
                sa.text("SELECT status, project_id, usage FROM responses WHERE id = :id"),
                {"id": response.id},
            )
        ).one()
        items = (
            await session.execute(
                sa.text(
                    "SELECT id, side, position, type, project_id FROM items "
                    "WHERE response_id = :id ORDER BY side, position"
                ),
                {"id": response.id},
            )
        ).all()
    assert row.status == "completed"
    assert row.project_id == project.project_id
    usage = row.usage if isinstance(row.usage, dict) else json.loads(row.usage)
    assert usage["total_tokens"] == response.usage.total_tokens  # type: ignore[union-attr]
    assert [(item.side, item.position, item.type) for item in items] == [
        ("input", 0, "message"),
        ("input", 1, "message"),
        ("output", 0, "message"),
    ]
    assert items[2].id == response.output[0].id
    assert {item.project_id for item in items} == {project.project_id}


async def test_store_false_keeps_nothing(
    client: AsyncOpenAI, project: Project, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.responses.create(model="test-model", input="secret", store=False)
    assert response.output_text == "echo: secret"
    assert response.store is False  # type: ignore[attr-defined]
    async with sessions() as session:
        counts = (
            await session.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM responses WHERE project_id = :p),"
                    " (SELECT count(*) FROM items WHERE project_id = :p)"
                ),
                {"p": project.project_id},
            )
        ).one()
    assert tuple(counts) == (0, 0)


async def test_finish_reason_length_is_incomplete(client: AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="test-model",
        input="one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty",
        max_output_tokens=16,
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.completed_at is None
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]
    fetched = await client.responses.retrieve(response.id)
    assert fetched.status == "incomplete"


async def test_tool_calls_become_function_call_items(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"type": "function", "name": "get_time", "description": "now"},
    ]
    response = await client.responses.create(
        model="test-model",
        input='weather? [tool:get_weather:{"city":"Oslo"}] [tool:get_time:{}]',
        tools=tools,  # type: ignore[arg-type]
        tool_choice="required",
        parallel_tool_calls=True,
    )
    sent = upstream.last_request().body
    assert sent["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    assert sent["tool_choice"] == "required"
    assert sent["parallel_tool_calls"] is True
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(call.name, call.arguments) for call in calls] == [
        ("get_weather", '{"city":"Oslo"}'),
        ("get_time", "{}"),
    ]
    assert all(call.id and call.id.startswith("fc_") for call in calls)
    assert response.status == "completed"
    assert response.tools[0].strict is True  # type: ignore[union-attr]

    follow_up = await client.responses.create(
        model="test-model",
        previous_response_id=response.id,
        input=[
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
            {"type": "function_call_output", "call_id": calls[1].call_id, "output": "noon"},
        ],
    )
    assert follow_up.status == "completed"
    messages = upstream.last_request().body["messages"]
    assert messages[1]["role"] == "assistant"
    assert [call["id"] for call in messages[1]["tool_calls"]] == [c.call_id for c in calls]
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": calls[0].call_id, "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1].call_id, "content": "noon"},
    ]


async def test_max_tool_calls_leaves_function_calls_alone(client: AsyncOpenAI) -> None:
    """OpenAI's reference: `max_tool_calls` caps built-in (hosted) tool calls only; a client's
    function calls are the client's to run (hosted calls: tests/e2e/test_mcp.py)."""
    response = await client.responses.create(
        model="test-model",
        input="[tool:a:{}] [tool:b:{}] [tool:c:{}]",
        tools=[{"type": "function", "name": n} for n in "abc"],  # type: ignore[misc]
        max_tool_calls=0,
    )
    calls = [item.name for item in response.output if item.type == "function_call"]
    assert calls == ["a", "b", "c"]
    assert response.max_tool_calls == 0


@pytest.mark.parametrize("stream", [False, True], ids=["sync", "stream"])
async def test_parallel_tool_calls_false_holds_one_call_whatever_the_upstream_sends(
    client: AsyncOpenAI, upstream: TestUpstream, stream: bool
) -> None:
    """The test upstream, like many self-hosted servers, ignores the flag and calls twice."""
    tools: Any = [{"type": "function", "name": n} for n in "ab"]
    request: Any = {
        "model": "test-model",
        "input": "[tool:a:{}] [tool:b:{}]",
        "tools": tools,
        "parallel_tool_calls": False,
    }
    if stream:
        events = [event async for event in await client.responses.create(**request, stream=True)]
        added = [e for e in events if e.type == "response.output_item.added"]
        assert len(added) == 1
        response = events[-1].response  # type: ignore[union-attr]
    else:
        response = await client.responses.create(**request)
    assert upstream.last_request().body["parallel_tool_calls"] is False
    assert [item.name for item in response.output if item.type == "function_call"] == ["a"]
    stored = await client.responses.retrieve(response.id)
    assert len(stored.output) == 1
    both = await client.responses.create(**{**request, "parallel_tool_calls": True})
    assert len(both.output) == 2


@pytest.mark.parametrize("stream", [False, True], ids=["sync", "stream"])
async def test_call_ids_too_long_to_send_back_are_replaced(
    client: AsyncOpenAI, upstream: TestUpstream, stream: bool
) -> None:
    """llama-cpp-python's ids exceed the 64 characters a function_call_output may carry: the
    client gets one it can send back, and the upstream sees that one on both sides."""
    tools: Any = [{"type": "function", "name": "lookup_customer_record"}]
    text = '[long-call-ids] [tool:lookup_customer_record:{"id": 7}]'
    if stream:
        events = [
            event
            async for event in await client.responses.create(
                model="test-model", input=text, tools=tools, stream=True
            )
        ]
        first = events[-1].response  # type: ignore[union-attr]
    else:
        first = await client.responses.create(model="test-model", input=text, tools=tools)
    upstream_id = "call__0_lookup_customer_record_cmpl-7fa0ad1f-99a3-4ef2-9690-aff3705d8651"
    assert len(upstream_id) > 64
    call = first.output[0]
    assert call.type == "function_call"
    assert call.call_id.startswith("call_")
    assert len(call.call_id) <= 64
    result: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "Ada"}]
    answer = await client.responses.create(
        model="test-model", input=result, tools=tools, previous_response_id=first.id
    )
    assert answer.output_text == "done: Ada"
    assistant, tool = upstream.last_request().body["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == tool["tool_call_id"] == call.call_id


async def test_reasoning_and_refusal_items(client: AsyncOpenAI) -> None:
    reasoned = await client.responses.create(model="test-model", input="[reasoning:mull it over] q")
    assert [item.type for item in reasoned.output] == ["reasoning", "message"]
    reasoning = reasoned.output[0]
    assert reasoning.id.startswith("rs_")
    assert reasoning.content[0].text == "mull it over"  # type: ignore[union-attr,index]
    refused = await client.responses.create(model="test-model", input="[refuse] bad idea")
    assert refused.output[0].content[0].type == "refusal"  # type: ignore[union-attr]
    assert refused.output_text == ""


@pytest.mark.parametrize("stream", [False, True], ids=["sync", "stream"])
async def test_service_tier_is_the_one_the_upstream_used(
    client: AsyncOpenAI, upstream: TestUpstream, stream: bool
) -> None:
    """Asked for priority, the upstream served on default: the Response says default."""
    if stream:
        events = await client.responses.create(
            model="test-model", input="[tier:default] hi", service_tier="priority", stream=True
        )
        response = [event async for event in events][-1].response  # type: ignore[union-attr]
    else:
        response = await client.responses.create(
            model="test-model", input="[tier:default] hi", service_tier="priority"
        )
    assert upstream.last_request().body["service_tier"] == "priority"
    assert response.service_tier == "default"
    assert (await client.responses.retrieve(response.id)).service_tier == "default"


async def test_reasoning_effort_reaches_the_upstream(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    response = await client.responses.create(
        model="test-model", input="think", reasoning={"effort": "high"}
    )
    assert upstream.last_request().body["reasoning_effort"] == "high"
    assert response.reasoning is not None
    assert response.reasoning.effort == "high"
    await client.responses.create(model="test-model", input="think")
    assert "reasoning_effort" not in upstream.last_request().body
