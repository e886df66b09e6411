"""One conversation across providers: a chain started on one upstream and continued on
another, each request valid for its own API (the test servers refuse what theirs refuse)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.anthropic_upstream import AnthropicUpstream
from tests.conftest import Project, rapport_with_routes, sdk
from tests.gemini_upstream import GeminiUpstream
from tests.harness import RapportServer
from tests.responses_upstream import ResponsesUpstream
from tests.upstream import TestUpstream

WEATHER: Any = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
THINK: Any = {"effort": "low"}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[AnthropicUpstream, GeminiUpstream, ResponsesUpstream]]:
    with AnthropicUpstream() as claude, GeminiUpstream() as gemini, ResponsesUpstream() as relay:
        yield claude, gemini, relay


@pytest.fixture(scope="module")
def switchboard(
    database_url: str,
    upstream: TestUpstream,
    upstreams: tuple[AnthropicUpstream, GeminiUpstream, ResponsesUpstream],
) -> Iterator[RapportServer]:
    claude, gemini, relay = upstreams
    with rapport_with_routes(
        database_url,
        upstream,
        claude={"provider": "anthropic", "base_url": claude.base_url},
        gemini3={"provider": "gemini", "base_url": gemini.base_url, "thinking_style": "effort"},
        relay={"provider": "openai-responses", "base_url": relay.base_url},
        chat={},
    ) as server:
        yield server


@pytest.fixture
def client(switchboard: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(switchboard, project)


async def test_a_chain_moves_from_claude_to_gemini_to_responses_to_chat(
    client: AsyncOpenAI,
    upstreams: tuple[AnthropicUpstream, GeminiUpstream, ResponsesUpstream],
    upstream: TestUpstream,
) -> None:
    claude, gemini, relay = upstreams
    first = await client.responses.create(
        model="claude", input="[think:hmm] [tool:get_weather:{}]", tools=WEATHER, reasoning=THINK
    )
    call = first.output[-1]
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]  # type: ignore[union-attr]
    # Gemini answers the tool result Claude's call asked for; Claude's thinking stays behind.
    second = await client.responses.create(
        model="gemini3", previous_response_id=first.id, input=output, tools=WEATHER, reasoning=THINK
    )
    assert second.output_text == "done: sunny"
    contents = gemini.last_request().body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][-1]["functionCall"]["name"] == "get_weather"
    third = await client.responses.create(
        model="relay", previous_response_id=second.id, input="and now?"
    )
    assert third.output_text == "echo: and now?"
    sent = relay.last_request().body["input"]
    assert all(item["type"] != "reasoning" for item in sent)  # no foreign reasoning upstream
    fourth = await client.responses.create(model="chat", previous_response_id=third.id, input="bye")
    assert fourth.output_text == "echo: bye"
    messages = upstream.last_request().body["messages"]
    assert messages[-1] == {"role": "user", "content": "bye"}
    assert any(m.get("tool_calls") for m in messages)
    # And back to Claude, whose own signed thinking is sent back with its turn.
    fifth = await client.responses.create(
        model="claude", previous_response_id=fourth.id, input="again"
    )
    assert fifth.status == "completed"
    turns = claude.last_request().body["messages"]
    assert turns[1]["content"][0]["type"] == "thinking"
