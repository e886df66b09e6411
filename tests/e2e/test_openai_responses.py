"""The `openai-responses` provider end to end: the openai SDK → Rapport (keeping the state) →
a Responses server that keeps none."""

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
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.responses_upstream import ResponsesUpstream, sealed
from tests.upstream import TestUpstream

WEATHER: Any = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
SEARCH: Any = [{"type": "web_search", "search_context_size": "low"}]


@pytest.fixture(scope="module")
def responses_upstream() -> Iterator[ResponsesUpstream]:
    with ResponsesUpstream() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(responses_upstream: ResponsesUpstream) -> None:
    responses_upstream.clear()


@pytest.fixture(scope="module")
def rapport_responses(
    database_url: str, upstream: TestUpstream, responses_upstream: ResponsesUpstream
) -> Iterator[RapportServer]:
    route = {
        "provider": "openai-responses",
        "base_url": responses_upstream.base_url,
        "api_key_env": ROUTE_KEY_ENV,
    }
    with rapport_with_routes(
        database_url,
        upstream,
        relay={**route, "upstream_model": "gpt-5"},
        searcher={**route, "upstream_tools": ("web_search",)},
    ) as server:
        yield server


@pytest.fixture
def client(rapport_responses: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(rapport_responses, project)


@pytest.fixture
async def http(
    rapport_responses: RapportServer, project: Project
) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {project.secret}"}
    base = rapport_responses.base_url
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        yield http


async def stream(http: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    async with http.stream("POST", "/responses", json={"stream": True, **body}) as answer:
        text = (await answer.aread()).decode()
    assert answer.status_code == 200, text
    return parse_frames(text)


async def test_the_upstream_keeps_nothing_and_gets_its_parameters(
    client: AsyncOpenAI, responses_upstream: ResponsesUpstream
) -> None:
    extra: Any = {"top_k": 3}
    raw = await client.responses.with_raw_response.create(
        model="relay",
        input="hi",
        instructions="Be brief.",
        metadata={"team": "a"},
        text={"verbosity": "low"},
        extra_body=extra,
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    assert document["output"][0]["content"][0]["text"] == "echo: hi"
    assert document["output"][0]["id"] != "msg_up1"  # an id of Rapport's
    assert document["usage"]["input_tokens_details"]["cached_tokens"] == 1
    sent = responses_upstream.last_request()
    assert sent.headers["authorization"] == f"Bearer {ROUTE_KEY}"
    body = sent.body
    assert (body["store"], body["include"], body["model"]) == (
        False,
        ["reasoning.encrypted_content"],
        "gpt-5",
    )
    assert (body["instructions"], body["metadata"]) == ("Be brief.", {"team": "a"})
    assert body["text"] == {"format": {"type": "text"}, "verbosity": "low"}
    assert "top_k" not in body


async def test_reasoning_comes_back_as_the_upstream_made_it(
    client: AsyncOpenAI, responses_upstream: ResponsesUpstream
) -> None:
    first = await client.responses.create(
        model="relay", input="[reason:think] [tool:get_weather:{}]", tools=WEATHER
    )
    reasoning, call = first.output
    assert reasoning.type == "reasoning"
    assert reasoning.summary[0].text == "think"
    assert reasoning.id != "rs_up1"
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]  # type: ignore[union-attr]
    second = await client.responses.create(
        model="relay", previous_response_id=first.id, input=output, tools=WEATHER
    )
    assert second.output_text == "done: sunny"
    sent = responses_upstream.last_request().body["input"]
    assert sent[1] == {
        "type": "reasoning",
        "id": "rs_up1",
        "summary": [{"type": "summary_text", "text": "think"}],
        "encrypted_content": sealed("think"),
    }
    assert sent[2] == {
        "type": "function_call",
        "call_id": "call_up0",
        "name": "get_weather",
        "arguments": "{}",
    }


async def test_a_stream_is_relayed_in_openais_order(http: httpx.AsyncClient) -> None:
    events = await stream(
        http, model="relay", input="[reason:plan] [tool:get_weather:{}]", tools=WEATHER
    )
    response = check_stream(events)
    reasoning, call = response["output"]
    assert reasoning["encrypted_content"].startswith("rapport.openai-responses.")
    assert (call["type"], call["name"], call["arguments"]) == ("function_call", "get_weather", "{}")
    events = await stream(http, model="relay", input="hello there")
    assert check_stream(events)["output"][0]["content"][0]["text"] == "echo: hello there"


@pytest.mark.parametrize("streamed", [False, True])
async def test_hosted_tools_the_route_passes_run_upstream_and_their_items_are_relayed(
    client: AsyncOpenAI,
    http: httpx.AsyncClient,
    responses_upstream: ResponsesUpstream,
    streamed: bool,
) -> None:
    ask: Any = {"model": "searcher", "input": "[search:oslo weather] now?", "tools": SEARCH}
    if streamed:
        document = check_stream(await stream(http, **ask))
    else:
        document = (await client.responses.with_raw_response.create(**ask)).http_response.json()
    search, _ = document["output"]
    assert search["type"] == "web_search_call"
    assert search["action"] == {"type": "search", "query": "oslo weather"}
    assert search["id"].startswith("ws_")
    assert search["id"] != "ws_up1"
    assert responses_upstream.last_request().body["tools"] == SEARCH
    await client.responses.create(
        model="searcher", previous_response_id=document["id"], input="more"
    )
    sent = responses_upstream.last_request().body["input"]
    assert [item["type"] for item in sent] == ["message", "web_search_call", "message", "message"]


async def test_incomplete_and_failed_answers(client: AsyncOpenAI, http: httpx.AsyncClient) -> None:
    cut = await client.responses.create(model="relay", input="[length]")
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    events = await stream(http, model="relay", input="[failed] hi")
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "server_error"


ERRORS = [
    ("[fail:429]", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("[fail:401]", openai.InternalServerError, 502, "server_error"),
    ("[fail:400]", openai.BadRequestError, 400, "invalid_prompt"),
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
        await client.responses.create(model="relay", input=f"hi {directive}")
    assert caught.value.status_code == status
    assert ROUTE_KEY not in caught.value.message
    if directive == "[overflow]":
        assert caught.value.code == "context_length_exceeded"
    [row] = await stored_failures(sessions, project)
    assert (row.status, row.error["code"]) == ("failed", code)  # type: ignore[index]
