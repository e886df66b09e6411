"""Codex CLI's request dialect: its parameters accepted, kept, forwarded or not, and echoed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import Project
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

# OpenAI's Response keys in the order real traffic shows (billing aside, which Rapport has not).
WIRE_ORDER = [
    "id", "object", "created_at", "status", "background", "completed_at", "error",
    "frequency_penalty", "incomplete_details", "instructions", "max_output_tokens",
    "max_tool_calls", "model", "output", "parallel_tool_calls", "presence_penalty",
    "previous_response_id", "prompt_cache_key", "prompt_cache_retention", "reasoning",
    "safety_identifier", "service_tier", "store", "temperature", "text", "tool_choice", "tools",
    "top_logprobs", "top_p", "truncation", "usage", "user", "metadata",
]  # fmt: skip

CODEX_BODY: dict[str, Any] = {
    "model": "test-model",
    "instructions": "You are Codex.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "d"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    ],
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto", "context": "all_turns"},
    "store": False,
    "stream": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "019a-session",
    "text": {"verbosity": "low"},
    "client_metadata": {"x-codex-turn": "1", "session_id": "019a-session"},
}


async def post(rapport: RapportServer, secret: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=rapport.base_url, timeout=10) as http:
        return await http.post(
            "/responses", json=body, headers={"authorization": f"Bearer {secret}"}
        )


async def test_codexs_first_request_is_answered(
    rapport: RapportServer, project: Project, upstream: TestUpstream
) -> None:
    answer = await post(rapport, project.secret, CODEX_BODY)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert schema_errors("Response", document) == []
    assert "client_metadata" not in document  # OpenAI's Response has no such field
    assert document["text"]["verbosity"] == "low"
    assert document["prompt_cache_key"] == "019a-session"
    assert document["parallel_tool_calls"] is False
    sent = upstream.last_request().body
    assert "client_metadata" not in json.dumps(sent)
    assert sent["prompt_cache_key"] == "019a-session"
    assert sent["reasoning_effort"] == "medium"


async def test_client_metadata_is_stored_with_the_response(
    rapport: RapportServer,
    project: Project,
    sessions: async_sessionmaker[AsyncSession],
    upstream: TestUpstream,
) -> None:
    answer = await post(rapport, project.secret, {**CODEX_BODY, "store": True})
    assert answer.status_code == 200, answer.text
    response_id = answer.json()["id"]
    async with sessions() as session:
        params = await session.scalar(
            sa.text("SELECT params FROM responses WHERE id = :id"), {"id": response_id}
        )
    assert params["client_metadata"] == CODEX_BODY["client_metadata"]
    assert "client_metadata" not in json.dumps(upstream.last_request().body)


async def test_penalties_are_forwarded_and_echoed(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    raw = await client.responses.with_raw_response.create(
        model="test-model",
        input="hi",
        extra_body={"presence_penalty": 0.5, "frequency_penalty": -1.25},
    )
    document = json.loads(raw.http_response.text)
    assert (document["presence_penalty"], document["frequency_penalty"]) == (0.5, -1.25)
    sent = upstream.last_request().body
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, -1.25)
    again = await client.responses.retrieve(document["id"])
    assert again.model_extra is not None
    assert again.model_extra["presence_penalty"] == 0.5


async def test_unset_penalties_echo_zero_in_openais_key_order(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    raw = await client.responses.with_raw_response.create(model="test-model", input="hi")
    document = json.loads(raw.http_response.text)
    assert (document["presence_penalty"], document["frequency_penalty"]) == (0.0, 0.0)
    assert [key for key in document if key in WIRE_ORDER] == WIRE_ORDER
    sent = upstream.last_request().body
    assert "presence_penalty" not in sent
    assert "frequency_penalty" not in sent


@pytest.mark.parametrize(
    ("param", "value", "code", "message"),
    [
        (
            "presence_penalty",
            2.5,
            "decimal_above_max_value",
            "Invalid 'presence_penalty': decimal above maximum value. Expected a value at most 2.",
        ),
        (
            "frequency_penalty",
            -3,
            "decimal_below_min_value",
            "Invalid 'frequency_penalty': decimal below minimum value. Expected a value at least -2.",
        ),
    ],
)
async def test_penalties_out_of_range_get_openais_error(
    client: AsyncOpenAI, upstream: TestUpstream, param: str, value: float, code: str, message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="test-model", input="hi", extra_body={param: value})
    error: Any = refused.value.body
    assert (error["param"], error["code"], error["type"]) == (
        param,
        code,
        "invalid_request_error",
    )
    assert error["message"] == message
    assert upstream.requests == []
