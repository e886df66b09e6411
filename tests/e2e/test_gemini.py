"""The `gemini` provider end to end: the openai SDK → Rapport → a Gemini API server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import ROUTE_KEY, ROUTE_KEY_ENV, Project, rapport_with_routes, sdk
from tests.e2e.test_streaming import check_stream, parse_frames
from tests.e2e.test_upstream_faults import stored_failures
from tests.gemini_upstream import DUMMY, GeminiUpstream, signature
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

WEATHER: Any = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
    {"type": "function", "name": "get_time"},
]
TWO_CALLS = 'weather? [tool:get_weather:{"city": "Oslo"}] [tool:get_time:{}]'
THINK: Any = {"effort": "medium"}


@pytest.fixture(scope="module")
def gemini() -> Iterator[GeminiUpstream]:
    with GeminiUpstream(api_key=ROUTE_KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(gemini: GeminiUpstream) -> None:
    gemini.clear()


@pytest.fixture(scope="module")
def rapport_gemini(
    database_url: str, upstream: TestUpstream, gemini: GeminiUpstream
) -> Iterator[RapportServer]:
    route = {"provider": "gemini", "base_url": gemini.base_url, "api_key_env": ROUTE_KEY_ENV}
    with rapport_with_routes(
        database_url,
        upstream,
        flash={**route, "upstream_model": "gemini-2.5-flash"},
        pro3={**route, "upstream_model": "models/gemini-3-pro", "thinking_style": "effort"},
    ) as server:
        yield server


@pytest.fixture
def client(rapport_gemini: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(rapport_gemini, project)


@pytest.fixture
async def http(rapport_gemini: RapportServer, project: Project) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {project.secret}"}
    base = rapport_gemini.base_url
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        yield http


async def stream(http: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    async with http.stream("POST", "/responses", json={"stream": True, **body}) as answer:
        text = (await answer.aread()).decode()
    assert answer.status_code == 200, text
    return parse_frames(text)


async def test_a_plain_answer_with_system_instruction_and_sampling(
    client: AsyncOpenAI, gemini: GeminiUpstream
) -> None:
    extra: Any = {"top_k": 7}
    raw = await client.responses.with_raw_response.create(
        model="flash", input="hi there", instructions="Be brief.", top_p=0.5, extra_body=extra
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    assert document["output"][0]["content"][0]["text"] == "echo: hi there"
    sent = gemini.last_request()
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == ROUTE_KEY
    assert sent.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "hi there"}]}]
    assert sent.body["generationConfig"] == {"topP": 0.5, "topK": 7}


async def test_a_stream_with_thoughts_holds_to_openais_events(
    http: httpx.AsyncClient, gemini: GeminiUpstream
) -> None:
    events = await stream(http, model="flash", input="[think:mull it] go", reasoning=THINK)
    response = check_stream(events)
    reasoning, message, signed = response["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "mull it"}]
    assert message["content"][0]["text"] == "echo: [think:mull it] go"
    assert signed["type"] == "reasoning"
    assert signed["encrypted_content"].startswith("rapport.gemini.")
    assert response["usage"]["output_tokens_details"]["reasoning_tokens"] == 2
    sent = gemini.last_request()
    assert sent.path.endswith(":streamGenerateContent")
    config = sent.body["generationConfig"]["thinkingConfig"]
    assert config == {"includeThoughts": True, "thinkingBudget": 8192}


async def test_calls_get_ids_of_ours_and_responses_name_their_function(
    client: AsyncOpenAI, gemini: GeminiUpstream
) -> None:
    first = await client.responses.create(model="flash", input=TWO_CALLS, tools=WEATHER)
    calls = first.output
    assert [(c.type, c.name) for c in calls] == [  # type: ignore[union-attr]
        ("function_call", "get_weather"),
        ("function_call", "get_time"),
    ]
    ids = {call.call_id for call in calls}  # type: ignore[union-attr]
    assert len(ids) == 2
    assert all(call_id.startswith("call_") for call_id in ids)
    outputs: Any = [
        {"type": "function_call_output", "call_id": call.call_id, "output": f"r{n}"}  # type: ignore[union-attr]
        for n, call in enumerate(calls)
    ]
    second = await client.responses.create(
        model="flash", previous_response_id=first.id, input=outputs, tools=WEATHER
    )
    assert second.output_text == "done: r0; r1"
    _, model_turn, results = gemini.last_request().body["contents"]
    assert [p["functionCall"]["name"] for p in model_turn["parts"]] == ["get_weather", "get_time"]
    assert [p["functionResponse"]["name"] for p in results["parts"]] == ["get_weather", "get_time"]
    declarations = gemini.last_request().body["tools"][0]["functionDeclarations"]
    assert declarations[0] == {"name": "get_weather", "parametersJsonSchema": {"type": "object"}}


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_calls_thought_signature_goes_back_on_that_call(
    client: AsyncOpenAI, http: httpx.AsyncClient, gemini: GeminiUpstream, streamed: bool
) -> None:
    ask: Any = {"model": "pro3", "input": TWO_CALLS, "tools": WEATHER, "reasoning": THINK}
    if streamed:
        output = check_stream(await stream(http, **ask))["output"]
    else:
        output = (await client.responses.with_raw_response.create(**ask)).http_response.json()[
            "output"
        ]
    assert [item["type"] for item in output] == ["reasoning", "function_call", "function_call"]
    assert (
        gemini.last_request().body["generationConfig"]["thinkingConfig"]["thinkingLevel"]
        == "medium"
    )
    calls = output[1:]
    outputs: Any = [
        {"type": "function_call_output", "call_id": call["call_id"], "output": "x"}
        for call in calls
    ]
    previous = [{"role": "user", "content": TWO_CALLS}, *output]
    await client.responses.create(
        model="pro3", input=[*previous, *outputs], tools=WEATHER, reasoning=THINK, store=False
    )
    model_turn = gemini.last_request().body["contents"][1]["parts"]
    assert model_turn[0]["thoughtSignature"] == signature("get_weather")
    assert "thoughtSignature" not in model_turn[1]


async def test_a_call_made_elsewhere_gets_the_placeholder_signature(
    client: AsyncOpenAI, gemini: GeminiUpstream
) -> None:
    history: Any = [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    response = await client.responses.create(
        model="pro3", input=history, tools=WEATHER, store=False
    )
    assert response.output_text == "done: sunny"
    call = gemini.last_request().body["contents"][1]["parts"][0]
    assert call["thoughtSignature"] == DUMMY


async def test_safety_and_blocked_prompts_are_content_filtered(client: AsyncOpenAI) -> None:
    stopped = await client.responses.create(model="flash", input="[safety]")
    assert stopped.status == "incomplete"
    assert stopped.incomplete_details is not None
    assert stopped.incomplete_details.reason == "content_filter"
    assert stopped.output_text == "I started"
    blocked = await client.responses.create(model="flash", input="[blocked]")
    assert blocked.incomplete_details is not None
    assert blocked.incomplete_details.reason == "content_filter"
    assert blocked.output == []
    cut = await client.responses.create(model="flash", input="[length] a b c")
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"


async def test_a_json_schema_format_becomes_a_response_schema(
    client: AsyncOpenAI, gemini: GeminiUpstream
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    text: Any = {"format": {"type": "json_schema", "name": "thing", "schema": schema}}
    await client.responses.create(model="flash", input="hi", text=text)
    config = gemini.last_request().body["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


ERRORS = [
    ("[fail:429]", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("[fail:403]", openai.InternalServerError, 502, "server_error"),
    ("[badkey]", openai.InternalServerError, 502, "server_error"),
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
        await client.responses.create(model="flash", input=f"hi {directive}")
    assert caught.value.status_code == status
    assert ROUTE_KEY not in caught.value.message
    if directive == "[overflow]":
        assert caught.value.code == "context_length_exceeded"
    [row] = await stored_failures(sessions, project)
    assert (row.status, row.error["code"]) == ("failed", code)  # type: ignore[index]
    assert ROUTE_KEY not in str(row.error)


async def test_an_overloaded_error_mid_stream_fails_as_rate_limited(
    http: httpx.AsyncClient,
) -> None:
    events = await stream(http, model="flash", input="[stream-error] hi there")
    final = events[-1]
    assert final["type"] == "response.failed"
    assert final["response"]["error"]["code"] == "rate_limit_exceeded"
