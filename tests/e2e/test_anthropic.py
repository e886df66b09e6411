"""The `anthropic` provider end to end: the openai SDK → Rapport → a Messages API server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.anthropic_upstream import REDACTED, AnthropicUpstream, signature
from tests.conftest import ROUTE_KEY, ROUTE_KEY_ENV, Project, rapport_with_routes, sdk
from tests.e2e.test_streaming import check_stream, parse_frames
from tests.e2e.test_upstream_faults import stored_failures
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

WEATHER: Any = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
    {"type": "function", "name": "get_time", "parameters": {"type": "object"}},
]
TWO_CALLS = 'weather? [tool:get_weather:{"city": "Oslo"}] [tool:get_time:{"tz": "CET"}]'
THINK: Any = {"effort": "low"}
INCLUDE: Any = ["reasoning.encrypted_content"]


@pytest.fixture(scope="module")
def claude() -> Iterator[AnthropicUpstream]:
    with AnthropicUpstream(api_key=ROUTE_KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(claude: AnthropicUpstream) -> None:
    claude.clear()


@pytest.fixture(scope="module")
def rapport_claude(
    database_url: str, upstream: TestUpstream, claude: AnthropicUpstream
) -> Iterator[RapportServer]:
    route = {"provider": "anthropic", "base_url": claude.base_url, "api_key_env": ROUTE_KEY_ENV}
    with rapport_with_routes(
        database_url,
        upstream,
        claude={**route, "upstream_model": "claude-sonnet-4-5"},
        adaptive={**route, "thinking_style": "effort", "max_output_tokens": 2000},
    ) as server:
        yield server


@pytest.fixture
def client(rapport_claude: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(rapport_claude, project)


@pytest.fixture
async def http(rapport_claude: RapportServer, project: Project) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {project.secret}"}
    base = rapport_claude.base_url
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        yield http


async def stream(http: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    async with http.stream("POST", "/responses", json={"stream": True, **body}) as answer:
        text = (await answer.aread()).decode()
    assert answer.status_code == 200, text
    return parse_frames(text)


async def test_a_plain_answer_with_system_headers_and_max_tokens(
    client: AsyncOpenAI, claude: AnthropicUpstream
) -> None:
    raw = await client.responses.with_raw_response.create(
        model="claude", input="hi there", instructions="Be brief.", temperature=1.5
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    assert document["output"][0]["content"][0]["text"] == "echo: hi there"
    assert document["usage"]["input_tokens"] == 5
    sent = claude.last_request()
    assert sent.headers["x-api-key"] == ROUTE_KEY
    assert "authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["system"] == "Be brief."
    assert sent.body["max_tokens"] == 8192
    assert sent.body["temperature"] == 1.0  # Anthropic's range ends at 1
    assert sent.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi there"}]}
    ]


async def test_a_stream_holds_to_openais_events(http: httpx.AsyncClient) -> None:
    events = await stream(
        http, model="claude", input="[think:plan it] go", reasoning=THINK, include=INCLUDE
    )
    response = check_stream(events)
    reasoning, message = response["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "plan it"}]
    assert reasoning["encrypted_content"].startswith("gAAAA")  # sealed, as asked
    assert message["content"][0]["text"] == "echo: [think:plan it] go"
    assert response["usage"]["output_tokens"] > 0


async def test_tool_calls_over_turns_pair_results_in_one_user_turn(
    client: AsyncOpenAI, claude: AnthropicUpstream
) -> None:
    first = await client.responses.create(model="claude", input=TWO_CALLS, tools=WEATHER)
    message, *calls = first.output
    assert message.type == "message"
    assert [(c.type, c.name, c.arguments) for c in calls] == [  # type: ignore[union-attr]
        ("function_call", "get_weather", '{"city": "Oslo"}'),
        ("function_call", "get_time", '{"tz": "CET"}'),
    ]
    outputs: Any = [
        {"type": "function_call_output", "call_id": call.call_id, "output": f"r{n}"}  # type: ignore[union-attr]
        for n, call in enumerate(calls)
    ]
    second = await client.responses.create(
        model="claude", previous_response_id=first.id, input=outputs, tools=WEATHER
    )
    assert second.output_text == "done: r0; r1"
    _, assistant, results = claude.last_request().body["messages"]
    assert [b["type"] for b in assistant["content"]] == ["text", "tool_use", "tool_use"]
    assert [b["type"] for b in results["content"]] == ["tool_result", "tool_result"]
    assert claude.last_request().body["tools"][0] == {
        "name": "get_weather",
        "input_schema": {"type": "object"},
    }


async def test_a_streamed_tool_call_is_whole(http: httpx.AsyncClient) -> None:
    events = await stream(http, model="claude", input=TWO_CALLS, tools=WEATHER)
    response = check_stream(events)
    assert [item["type"] for item in response["output"]] == [
        "message",
        "function_call",
        "function_call",
    ]
    assert response["output"][1]["arguments"] == '{"city": "Oslo"}'


async def test_the_thinking_signature_comes_back_on_the_next_turn(
    client: AsyncOpenAI, claude: AnthropicUpstream
) -> None:
    first = await client.responses.create(
        model="claude",
        input="[think:use the tool] [tool:get_weather:{}]",
        tools=WEATHER,
        reasoning=THINK,
    )
    reasoning, _, call = first.output
    assert reasoning.type == "reasoning"
    assert claude.last_request().body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert claude.last_request().body["max_tokens"] == 8192 + 2048
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]  # type: ignore[union-attr]
    await client.responses.create(
        model="claude", previous_response_id=first.id, input=output, tools=WEATHER, reasoning=THINK
    )
    assistant = claude.last_request().body["messages"][1]["content"]
    assert assistant[0] == {
        "type": "thinking",
        "thinking": "use the tool",
        "signature": signature("use the tool"),
    }


@pytest.mark.parametrize("stateless", [False, True])
async def test_redacted_thinking_round_trips_also_sealed(
    client: AsyncOpenAI, claude: AnthropicUpstream, stateless: bool
) -> None:
    first = await client.responses.with_raw_response.create(
        model="claude",
        input="[redacted] [think:t] q",
        reasoning=THINK,
        include=INCLUDE,
        store=not stateless,
    )
    output = first.http_response.json()["output"]
    assert [item["type"] for item in output] == ["reasoning", "reasoning", "message"]
    if stateless:
        carried = [{k: v for k, v in item.items() if k != "content"} for item in output[:2]]
        replay: Any = [{"role": "user", "content": "[redacted] [think:t] q"}, *carried, output[2]]
        await client.responses.create(
            model="claude",
            input=[*replay, {"role": "user", "content": "next"}],
            reasoning=THINK,
            store=False,
        )
    else:
        await client.responses.create(
            model="claude",
            previous_response_id=first.http_response.json()["id"],
            input="next",
            reasoning=THINK,
        )
    blocks = claude.last_request().body["messages"][1]["content"]
    assert blocks[:2] == [
        {"type": "thinking", "thinking": "t", "signature": signature("t")},
        {"type": "redacted_thinking", "data": REDACTED},
    ]


async def test_adaptive_thinking_and_an_effort_level(
    client: AsyncOpenAI, claude: AnthropicUpstream
) -> None:
    await client.responses.create(model="adaptive", input="q", reasoning={"effort": "high"})
    sent = claude.last_request().body
    assert sent["thinking"] == {"type": "adaptive"}
    assert sent["output_config"] == {"effort": "high"}
    assert sent["max_tokens"] == 2000  # the route's max_output_tokens


async def test_stop_reasons_become_incomplete_details(client: AsyncOpenAI) -> None:
    cut = await client.responses.create(
        model="claude", input="one two three four", max_output_tokens=16
    )
    assert cut.status == "completed"
    cut = await client.responses.create(model="claude", input="go [length]")
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    refused = await client.responses.create(model="claude", input="[refuse]")
    assert refused.incomplete_details is not None
    assert refused.incomplete_details.reason == "content_filter"


async def test_cache_reads_and_writes_reach_the_usage(client: AsyncOpenAI) -> None:
    response = await client.responses.create(model="claude", input="[cache] hi")
    assert response.usage is not None
    details = response.usage.input_tokens_details
    assert details.cached_tokens == 11
    assert response.usage.model_dump()["input_tokens_details"]["cache_write_tokens"] == 7
    assert response.usage.input_tokens == 5 + 11 + 7  # the upstream counts 5 uncached


async def test_images_and_documents_become_blocks(
    client: AsyncOpenAI, claude: AnthropicUpstream
) -> None:
    content: Any = [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K", "detail": "auto"},
        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"},
        {
            "type": "input_file",
            "filename": "a.pdf",
            "file_data": "data:application/pdf;base64,JVBERi0=",
        },
        {"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain;base64,aGVsbG8="},
    ]
    await client.responses.create(model="claude", input=[{"role": "user", "content": content}])
    _, inline, linked, pdf, text = claude.last_request().body["messages"][0]["content"]
    assert inline["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}
    assert linked["source"] == {"type": "url", "url": "https://example.com/cat.png"}
    assert pdf == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        "title": "a.pdf",
    }
    assert text["source"] == {"type": "text", "media_type": "text/plain", "data": "hello"}


ERRORS = [
    ("[fail:429]", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("[fail:529]", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("[fail:401]", openai.InternalServerError, 502, "server_error"),
    ("[fail:400]", openai.BadRequestError, 400, "invalid_prompt"),
    ("[fail:500]", openai.InternalServerError, 502, "server_error"),
    ("[overflow]", openai.BadRequestError, 400, "invalid_prompt"),
]


@pytest.mark.parametrize(("directive", "error", "status", "code"), ERRORS)
async def test_errors_are_answered_and_stored_as_failed(
    client: AsyncOpenAI,
    project: Project,
    sessions: Any,
    directive: str,
    error: type[openai.APIStatusError],
    status: int,
    code: str,
) -> None:
    with pytest.raises(error) as caught:
        await client.responses.create(model="claude", input=f"hi {directive}")
    assert caught.value.status_code == status
    assert ROUTE_KEY not in caught.value.message
    if directive == "[overflow]":
        assert caught.value.code == "context_length_exceeded"
    [row] = await stored_failures(sessions, project)
    assert (row.status, row.error["code"]) == ("failed", code)  # type: ignore[index]
    assert ROUTE_KEY not in str(row.error)


async def test_an_error_event_mid_stream_fails_the_response(http: httpx.AsyncClient) -> None:
    events = await stream(http, model="claude", input="[stream-error] hi")
    final = events[-1]
    assert final["type"] == "response.failed"
    assert final["response"]["error"]["code"] == "rate_limit_exceeded"
    assert final["response"]["output"][0]["content"][0]["text"] == "echo: [stream-error] hi"


async def test_top_k_and_the_user_reach_anthropic(
    client: AsyncOpenAI, claude: AnthropicUpstream
) -> None:
    extra: Any = {"top_k": 5}
    await client.responses.create(
        model="claude", input="hi", safety_identifier="u-1", extra_body=extra
    )
    sent = claude.last_request().body
    assert (sent["top_k"], sent["metadata"]) == (5, {"user_id": "u-1"})
