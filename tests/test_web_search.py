"""The web_search tool class against a SearXNG-shaped server over real HTTP: items, events,
options, failures and citations, each shape held to OpenAI's schema."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from app.config import Settings
from app.errors import InvalidRequest
from app.runs.emitter import Emitter, Event
from app.tools import searxng
from app.tools.base import ItemEvents
from app.tools.citations import citations_in
from app.tools.web_search import DESCRIPTION, WebSearch
from app.wire.hosted_tools import SearchFilters, WebSearchTool
from tests.openapi import schema_errors
from tests.searxng import SearxngTestServer, result_url
from tests.test_citations import A, spans

EVENT_SCHEMAS = {
    "response.web_search_call.in_progress": "ResponseWebSearchCallInProgressEvent",
    "response.web_search_call.searching": "ResponseWebSearchCallSearchingEvent",
    "response.web_search_call.completed": "ResponseWebSearchCallCompletedEvent",
}
STAGES = list(EVENT_SCHEMAS)
SOURCES = ["web_search_call.action.sources"]


@pytest.fixture(scope="module")
def searx() -> Iterator[SearxngTestServer]:
    with SearxngTestServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(searx: SearxngTestServer) -> None:
    searx.clear()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def spec(**fields: Any) -> WebSearchTool:
    return WebSearchTool(type=fields.pop("type", "web_search"), **fields)


def tool(
    searx: SearxngTestServer,
    http: httpx.AsyncClient,
    include: list[str] | None = None,
    url: str | None = None,
    timeout: float = 2.0,
    **fields: Any,
) -> WebSearch:
    settings = Settings(web_search_url=url or searx.url, tool_timeout_seconds=timeout)
    return WebSearch(spec(**fields), settings, http, include)


async def search(
    web: WebSearch, query: str, index: int = 3
) -> tuple[dict[str, Any], str, list[Event]]:
    """Open and run one call as the run loop would: the item, the model's text, the events."""
    opened = web.open("web_search", json.dumps({"query": query}))
    assert opened.runs
    events: list[Event] = []
    emitter = Emitter(obfuscate=False, first_sequence=7)
    text = await web.run(
        opened.item, ItemEvents(events.append, emitter.event, opened.item["id"], index)
    )
    assert schema_errors("WebSearchToolCall", opened.item) == []
    return opened.item, text, events


def numbers(text: str) -> list[int]:
    return [int(line[1 : line.index("]")]) for line in text.split("\n") if line.startswith("[")]


def test_one_function_is_offered(searx: SearxngTestServer) -> None:
    web = WebSearch(spec(), Settings(web_search_url=searx.url), httpx.AsyncClient(), None)
    (function,) = web.functions()
    assert function.name == "web_search"
    assert function.parameters == {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to search the web for."}},
        "required": ["query"],
        "additionalProperties": False,
    }
    assert function.description == DESCRIPTION
    assert "[1]" in DESCRIPTION
    assert "[2]" in DESCRIPTION


async def test_prepare_adds_nothing(searx: SearxngTestServer, http: httpx.AsyncClient) -> None:
    added: list[Any] = []

    async def add_item(item: dict[str, Any], fill: Any = None) -> None:
        added.append(item)

    await tool(searx, http).prepare([], add_item)
    assert added == []
    assert searx.requests == []


@pytest.mark.parametrize(
    ("arguments", "query"),
    [
        ('{"query": "rust borrow checker"}', "rust borrow checker"),
        ("rust borrow checker", "rust borrow checker"),  # not JSON: the bare words
        ('{"q": "x"}', '{"q": "x"}'),  # JSON without a query: the text as sent
        ('{"query": 3}', '{"query": 3}'),
    ],
)
def test_open_makes_an_in_progress_call(
    searx: SearxngTestServer, arguments: str, query: str
) -> None:
    web = WebSearch(spec(), Settings(web_search_url=searx.url), httpx.AsyncClient(), None)
    opened = web.open("web_search", arguments)
    assert opened.runs
    item = opened.item
    assert item["id"].startswith("ws_")
    assert {key: value for key, value in item.items() if key != "id"} == {
        "type": "web_search_call",
        "status": "in_progress",
        "action": {"type": "search", "query": query},
    }
    assert schema_errors("WebSearchToolCall", item) == []


async def test_a_search_runs_and_numbers_its_results(
    searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    web = tool(searx, http)
    item, text, events = await search(web, "python asyncio")
    assert item["status"] == "completed"
    assert item["action"] == {"type": "search", "query": "python asyncio"}  # no sources asked
    assert [event["type"] for event in events] == STAGES
    for sequence, event in enumerate(events, start=7):
        assert event == {
            "type": event["type"],
            "sequence_number": sequence,
            "item_id": item["id"],
            "output_index": 3,
        }
        assert schema_errors(EVENT_SCHEMAS[event["type"]], event) == []
    assert text.split("\n\n")[0] == (
        f"[1] python asyncio result 1 — {result_url('python asyncio', 0)}\n"
        "Snippet 1 about python asyncio."
    )
    assert numbers(text) == [1, 2, 3, 4, 5]  # medium: five results
    (request,) = searx.requests
    assert request.path == "/search"
    assert request.params == {
        "q": "python asyncio",
        "format": "json",
        "categories": "general",
        "pageno": "1",
    }


async def test_events_wait_for_a_sink(searx: SearxngTestServer, http: httpx.AsyncClient) -> None:
    """A non-streaming run has no sink: the call runs all the same, making no events."""
    web = tool(searx, http)
    opened = web.open("web_search", '{"query": "quiet"}')
    text = await web.run(opened.item, ItemEvents(None, Emitter().event, opened.item["id"], 0))
    assert opened.item["status"] == "completed"
    assert numbers(text) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("size", "count"), [("low", 3), ("medium", 5), ("high", 10)])
async def test_context_size_sets_how_many_results(
    searx: SearxngTestServer, http: httpx.AsyncClient, size: str, count: int
) -> None:
    web = tool(searx, http, search_context_size=size)
    _, text, _ = await search(web, "sizes")
    assert numbers(text) == list(range(1, count + 1))


async def test_fewer_results_than_asked(searx: SearxngTestServer, http: httpx.AsyncClient) -> None:
    _, text, _ = await search(tool(searx, http, search_context_size="high"), "rare @count=2")
    assert numbers(text) == [1, 2]


async def test_no_results_is_a_completed_search(
    searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    item, text, events = await search(tool(searx, http, include=SOURCES), "nothing @none")
    assert item["status"] == "completed"
    assert item["action"]["sources"] == []
    assert text == 'The web search for "nothing @none" found no results.'
    assert [event["type"] for event in events] == STAGES


async def test_allowed_domains_hint_the_query_and_filter_the_results(
    searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    """The server ignores `site:` (as many engines do): the filter alone keeps the domain."""
    filters = SearchFilters(allowed_domains=["Example.com", "https://www.python.org/about"])
    web = tool(searx, http, include=SOURCES, filters=filters, search_context_size="high")
    item, text, _ = await search(web, "domains")
    assert searx.queries == ["domains site:example.com OR site:www.python.org"]
    assert item["action"]["query"] == "domains"  # the model's query, as it asked
    hosts = [httpx.URL(source["url"]).host for source in item["action"]["sources"]]
    assert hosts == ["www.python.org", "example.com", "news.example.com"]
    assert numbers(text) == [1, 2, 3]  # neither notexample.com nor example.com.evil.test


async def test_sources_only_with_the_include(
    searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    item, _, _ = await search(tool(searx, http, include=SOURCES, search_context_size="low"), "s")
    assert item["action"]["sources"] == [
        {"type": "url", "url": result_url("s", index)} for index in range(3)
    ]
    assert schema_errors("WebSearchToolCall", item) == []
    other = ["message.output_text.logprobs"]
    item, _, _ = await search(tool(searx, http, include=other), "s")
    assert "sources" not in item["action"]


async def test_added_event_keeps_the_item_as_it_was(
    searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    """The loop's output_item.added event copies the item's top level only: the run replaces
    `action` rather than changing it, so that event does not show the sources early."""
    web = tool(searx, http, include=SOURCES)
    opened = web.open("web_search", '{"query": "early"}')
    action_before = opened.item["action"]
    await web.run(opened.item, ItemEvents(None, Emitter().event, opened.item["id"], 0))
    assert action_before == {"type": "search", "query": "early"}
    assert len(opened.item["action"]["sources"]) == 5


async def test_numbers_run_on_across_searches(
    searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    web = tool(searx, http, search_context_size="low")
    _, first, _ = await search(web, "alpha")
    _, second, _ = await search(web, "beta")
    _, again, _ = await search(web, "alpha")
    assert (numbers(first), numbers(second), numbers(again)) == ([1, 2, 3], [4, 5, 6], [1, 2, 3])
    notes = web.annotate("See [1] and [6].")
    assert [note["url"] for note in notes] == [result_url("alpha", 0), result_url("beta", 2)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("down @fail=500", "the search backend answered HTTP 500"),
        ("html @garbage", "the search backend's answer was not a JSON result list"),
        ("busy @fail=429", "the search backend answered HTTP 429"),
    ],
)
async def test_a_failing_backend_fails_the_call_not_the_run(
    searx: SearxngTestServer, http: httpx.AsyncClient, query: str, reason: str
) -> None:
    item, text, events = await search(tool(searx, http, include=SOURCES), query)
    assert item["status"] == "failed"
    assert item["action"] == {"type": "search", "query": query, "sources": []}
    assert text == f"The web search failed: {reason}. Answer without it, or try again."
    assert [event["type"] for event in events] == STAGES


async def test_an_unreachable_backend_names_no_url_or_secret(
    searx: SearxngTestServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://searx-user:searx-secret@127.0.0.1:{_closed_port()}/"
    with caplog.at_level(logging.DEBUG):
        item, text, _ = await search(tool(searx, http, url=url), "anything")
    assert item["status"] == "failed"
    assert text == (
        "The web search failed: the search backend could not be reached. "
        "Answer without it, or try again."
    )
    ours = [record for record in caplog.records if record.name.startswith("rapport")]
    assert [record.getMessage() for record in ours] == ["web search failed"]
    logged = repr([record.__dict__ for record in ours])
    for shown in (text, logged, json.dumps(item)):
        assert "searx-secret" not in shown
        assert "127.0.0.1" not in shown


async def test_a_slow_backend_times_out(searx: SearxngTestServer, http: httpx.AsyncClient) -> None:
    started = time.monotonic()
    item, text, events = await search(tool(searx, http, timeout=0.3), "slow @sleep=3000")
    assert time.monotonic() - started < 2
    assert item["status"] == "failed"
    assert "did not answer within 0.3 s" in text
    assert [event["type"] for event in events] == STAGES


async def test_an_empty_query_is_not_sent(
    searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    item, text, _ = await search(tool(searx, http), "   ")
    assert item["status"] == "failed"
    assert text.startswith("The web search failed: the query was empty")
    assert searx.requests == []


async def test_credentials_in_the_url_reach_the_backend_as_basic_auth(
    searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    url = searx.url.replace("http://", "http://user:pa55@") + "/"
    item, _, _ = await search(tool(searx, http, url=url), "authorised")
    assert item["status"] == "completed"
    (request,) = searx.requests
    assert request.headers["authorization"] == "Basic dXNlcjpwYTU1"  # user:pa55


@pytest.mark.parametrize(
    ("base", "endpoint"),
    [
        ("http://searx:8080", "http://searx:8080/search"),
        ("http://searx:8080/", "http://searx:8080/search"),
        ("https://host/searxng/", "https://host/searxng/search"),
        ("https://host/searxng/search", "https://host/searxng/search"),
    ],
)
def test_endpoint(base: str, endpoint: str) -> None:
    assert searxng.endpoint(base) == endpoint


def test_without_a_backend_the_tool_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as raised:
        WebSearch(spec(type="web_search_preview"), Settings(), httpx.AsyncClient(), None)
    error = msgspec.to_builtins(raised.value.envelope())
    assert error == {
        "error": {
            "message": "The 'web_search_preview' tool needs a search backend: this server has "
            "none (RAPPORT_WEB_SEARCH_URL, a SearXNG instance, is not set).",
            "type": "invalid_request_error",
            "param": "tools[0].type",
            "code": "unsupported_parameter",
        }
    }
    with pytest.raises(InvalidRequest) as raised:
        WebSearch.check_backend(spec(), Settings(), 4)
    assert raised.value.param == "tools[4].type"


def test_no_sources_no_citations(searx: SearxngTestServer) -> None:
    web = WebSearch(spec(), Settings(web_search_url=searx.url), httpx.AsyncClient(), None)
    assert web.annotate("See [1] and https://example.com/a.") == []
    assert citations_in("", [A]) == []


async def test_the_tool_annotates_its_run(
    searx: SearxngTestServer, http: httpx.AsyncClient
) -> None:
    web = tool(searx, http, search_context_size="low")
    await search(web, "cite me")
    second = result_url("cite me", 1)
    text = f"First [1], then {second} and [4]."
    notes = web.annotate(text)
    assert spans(text, notes) == [("[1]", result_url("cite me", 0)), (second, second)]
    assert notes[0]["title"] == "cite me result 1"
