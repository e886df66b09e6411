"""web_search end to end: the official SDK against Rapport, the SearXNG-shaped test backend and
the test upstream, sync, streamed and in the background.

The test upstream calls `web_search` when its prompt says `[tool:web_search:{"query": …}]` and,
given the results, answers "done: <results>", so its answer quotes the numbered results — the
`[n]` markers and the URLs — and every one of them is a citation Rapport must annotate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import Project, sdk, server_settings
from tests.e2e.test_streaming import check_stream, post_stream
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.searxng import SearxngTestServer, result_url
from tests.upstream import TestUpstream, _usage, plan

SEARCH = '[tool:web_search:{"query": "python asyncio"}]'
SOURCES = ["web_search_call.action.sources"]


@pytest.fixture(scope="module")
def searx() -> Iterator[SearxngTestServer]:
    with SearxngTestServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_searx(searx: SearxngTestServer) -> None:
    searx.clear()


@pytest.fixture(scope="module")
def search_rapport(
    database_url: str, upstream: TestUpstream, searx: SearxngTestServer
) -> Iterator[RapportServer]:
    settings = server_settings(
        database_url,
        upstream,
        web_search_url=searx.url,
        allowed_tool_hosts=("127.0.0.1",),
        tool_timeout_seconds=1.0,
    )
    server = RapportServer(settings).start()
    yield server
    server.stop()


@pytest.fixture
def client(search_rapport: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(search_rapport, project)


@pytest.fixture
async def http(search_rapport: RapportServer, project: Project) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(
        base_url=search_rapport.base_url, headers=headers, timeout=10
    ) as client:
        yield client


async def create_raw(client: AsyncOpenAI, **body: Any) -> dict[str, Any]:
    raw = await client.responses.with_raw_response.create(model="test-model", **body)
    document: dict[str, Any] = raw.http_response.json()
    assert schema_errors("Response", document) == []
    return document


def cited(text: str, annotations: list[dict[str, Any]]) -> list[tuple[str, str]]:
    for note in annotations:
        assert note["type"] == "url_citation"
        assert note["title"]
    return [(text[note["start_index"] : note["end_index"]], note["url"]) for note in annotations]


def expected_citations(query: str, count: int) -> list[tuple[str, str]]:
    """The answer quotes each result's `[n] title — url`: its marker, then its URL."""
    pairs = []
    for index in range(count):
        url = result_url(query, index)
        pairs += [(f"[{index + 1}]", url), (url, url)]
    return pairs


async def test_a_search_between_two_model_calls(
    client: AsyncOpenAI, searx: SearxngTestServer, upstream: TestUpstream
) -> None:
    document = await create_raw(
        client, input=f"what is new? {SEARCH}", tools=[{"type": "web_search"}]
    )
    call, answer = document["output"]
    assert call["id"].startswith("ws_")
    assert (call["type"], call["status"]) == ("web_search_call", "completed")
    assert call["action"] == {"type": "search", "query": "python asyncio"}  # no include
    assert searx.queries == ["python asyncio"]
    part = answer["content"][0]
    assert part["text"].startswith(
        f"done: [1] python asyncio result 1 — {result_url('python asyncio', 0)}\n"
    )
    assert cited(part["text"], part["annotations"]) == expected_citations("python asyncio", 5)
    first, second = upstream.requests
    offered = first.body["tools"][0]["function"]
    assert offered["name"] == "web_search"
    assert offered["parameters"]["required"] == ["query"]
    assert second.body["messages"][-1]["role"] == "tool"
    assert second.body["messages"][-1]["content"].startswith("[1] python asyncio result 1")
    # Usage adds up both model calls.
    calls = [_usage(request.body, plan(request.body)) for request in (first, second)]
    usage = document["usage"]
    assert usage["input_tokens"] == sum(call["prompt_tokens"] for call in calls)
    assert usage["output_tokens"] == sum(call["completion_tokens"] for call in calls)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert document["tools"] == [
        {"type": "web_search", "search_context_size": "medium", "user_location": None}
    ]
    stored = await client.responses.retrieve(document["id"])
    assert [item.type for item in stored.output] == ["web_search_call", "message"]
    assert stored.output[1].content[0].annotations[0].type == "url_citation"  # type: ignore[union-attr]


async def test_sources_with_the_include_and_the_options(
    client: AsyncOpenAI, searx: SearxngTestServer
) -> None:
    tools = [
        {
            "type": "web_search",
            "search_context_size": "low",
            "filters": {"allowed_domains": ["python.org"]},
            "user_location": {"type": "approximate", "country": "NO", "city": "Oslo"},
        }
    ]
    document = await create_raw(client, input=SEARCH, tools=tools, include=SOURCES)
    call = document["output"][0]
    urls = [source["url"] for source in call["action"]["sources"]]
    assert urls == [result_url("python asyncio", 1), result_url("python asyncio", 2)]
    assert searx.queries == ["python asyncio site:python.org"]
    assert "language" not in searx.requests[0].params  # a country names no language
    assert document["tools"][0]["filters"] == {"allowed_domains": ["python.org"]}
    assert document["tools"][0]["user_location"]["country"] == "NO"


async def test_streamed_events_in_openai_order(
    http: httpx.AsyncClient, searx: SearxngTestServer
) -> None:
    _, events = await post_stream(
        http, input=SEARCH, tools=[{"type": "web_search"}], include=SOURCES, stream=True
    )
    final = check_stream(events)  # every event valid against OpenAI's schema, in order
    kinds = [event["type"] for event in events]
    search = kinds.index("response.web_search_call.in_progress")
    assert kinds[search - 1 : search + 4] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    call_id = final["output"][0]["id"]
    for event in events[search : search + 3]:
        assert (event["item_id"], event["output_index"]) == (call_id, 0)
    added = events[search - 1]["item"]
    assert added["action"] == {"type": "search", "query": "python asyncio"}
    assert added["status"] == "in_progress"
    assert len(events[search + 3]["item"]["action"]["sources"]) == 5
    assert "response.function_call_arguments.delta" not in kinds  # the call streams as itself
    notes = [event for event in events if event["type"] == "response.output_text.annotation.added"]
    assert [note["annotation_index"] for note in notes] == list(range(10))
    # After the text's last delta, before its done event (whose part shows them all).
    where = [i for i, kind in enumerate(kinds) if kind == "response.output_text.annotation.added"]
    last_delta = max(i for i, kind in enumerate(kinds) if kind == "response.output_text.delta")
    assert last_delta < where[0]
    assert where[-1] < kinds.index("response.output_text.done")
    part = final["output"][1]["content"][0]
    assert [note["annotation"] for note in notes] == part["annotations"]
    assert cited(part["text"], part["annotations"]) == expected_citations("python asyncio", 5)
    assert {note["output_index"] for note in notes} == {1}


async def test_the_sdk_streams_and_parses_it(client: AsyncOpenAI) -> None:
    kinds: list[str] = []
    async with client.responses.stream(
        model="test-model", input=SEARCH, tools=[{"type": "web_search"}]
    ) as stream:
        async for event in stream:
            kinds.append(event.type)
        final = await stream.get_final_response()
    assert "response.web_search_call.searching" in kinds
    assert "response.output_text.annotation.added" in kinds
    call, message = final.output
    assert call.type == "web_search_call"
    assert call.status == "completed"
    assert message.type == "message"
    annotations = message.content[0].annotations  # type: ignore[union-attr]
    assert annotations[0].type == "url_citation"
    assert annotations[0].url == result_url("python asyncio", 0)


async def test_tool_choice_forces_the_first_search_only(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    choice: Any = {"type": "web_search_preview"}
    document = await create_raw(
        client, input=SEARCH, tools=[{"type": "web_search"}], tool_choice=choice
    )
    assert document["tool_choice"] == choice
    assert [item["type"] for item in document["output"]] == ["web_search_call", "message"]
    first, second = upstream.requests
    assert first.body["tool_choice"] == {"type": "function", "function": {"name": "web_search"}}
    assert "tool_choice" not in second.body  # free to answer once it has the results


@pytest.mark.parametrize(
    "kind", ["web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"]
)
async def test_every_web_search_type(client: AsyncOpenAI, kind: str) -> None:
    document = await create_raw(
        client, input=SEARCH, tools=[{"type": kind, "search_context_size": "high"}]
    )
    call, answer = document["output"]
    assert call["status"] == "completed"
    assert answer["content"][0]["text"].count("\n\n[") == 9  # high: ten results
    assert document["tools"][0]["type"] == kind


async def test_a_failing_backend_fails_the_call_only(
    client: AsyncOpenAI, searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    failing = '[tool:web_search:{"query": "down @fail=500"}]'
    document = await create_raw(client, input=failing, tools=[{"type": "web_search"}])
    assert document["status"] == "completed"
    call, answer = document["output"]
    assert call["status"] == "failed"
    assert answer["content"][0]["text"] == (
        "done: The web search failed: the search backend answered HTTP 500. "
        "Answer without it, or try again."
    )
    assert answer["content"][0]["annotations"] == []
    assert searx.url not in json.dumps(document)
    slow = '[tool:web_search:{"query": "slow @sleep=3000"}]'
    _, events = await post_stream(http, input=slow, tools=[{"type": "web_search"}], stream=True)
    final = check_stream(events)
    assert final["status"] == "completed"
    assert final["output"][0]["status"] == "failed"
    assert "did not answer within 1 s" in final["output"][1]["content"][0]["text"]


async def test_a_follow_up_turn_keeps_the_search_out_of_the_model_context(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await client.responses.create(
        model="test-model", input=SEARCH, tools=[{"type": "web_search"}]
    )
    upstream.clear()
    second = await client.responses.create(
        model="test-model",
        input="thanks",
        previous_response_id=first.id,
        tools=[{"type": "web_search"}],
    )
    assert second.output_text == "echo: thanks"
    assert second.output[0].content[0].annotations == []  # type: ignore[union-attr]
    (request,) = upstream.requests
    assert [m["role"] for m in request.body["messages"]] == ["user", "assistant", "user"]


async def test_a_background_search(client: AsyncOpenAI, searx: SearxngTestServer) -> None:
    response = await client.responses.create(
        model="test-model",
        input=SEARCH,
        tools=[{"type": "web_search_preview"}],
        include=SOURCES,
        background=True,
    )
    for _ in range(200):
        if response.status not in ("queued", "in_progress"):
            break
        await asyncio.sleep(0.05)
        response = await client.responses.retrieve(response.id)
    assert response.status == "completed"
    call, message = response.output
    assert call.type == "web_search_call"
    assert len(call.action.sources or []) == 5  # type: ignore[union-attr]
    assert message.content[0].annotations  # type: ignore[union-attr]
    assert searx.queries == ["python asyncio"]


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{"type": "web_search"}], "tools[0].type"),
        (
            [{"type": "function", "name": "f"}, {"type": "web_search_preview_2025_03_11"}],
            "tools[1].type",
        ),
    ],
)
async def test_without_a_backend_web_search_is_a_400(
    rapport: RapportServer, project: Project, tools: list[dict[str, Any]], param: str
) -> None:
    plain = sdk(rapport, project)  # the session's Rapport has no RAPPORT_WEB_SEARCH_URL
    with pytest.raises(openai.BadRequestError) as raised:
        await plain.responses.create(model="test-model", input=SEARCH, tools=tools)
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["param"] == param
    assert error["code"] == "unsupported_parameter"
    assert error["type"] == "invalid_request_error"
    assert "RAPPORT_WEB_SEARCH_URL" in error["message"]
