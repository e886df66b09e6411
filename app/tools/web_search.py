"""OpenAI's `web_search` hosted tool, answered by the operator's SearXNG instance.

The model is offered one function, `web_search(query)`. Each call becomes a `web_search_call`
item whose stream events are OpenAI's (`in_progress`, `searching`, `completed`); the model
reads the results as numbered text and is told to cite them as `[n]`. Numbers run on across
the searches of one response (a URL found twice keeps its first number), so a citation in the
answer names one source, and `annotate` turns citations into `url_citation`s.

What the tool's options become:
- `search_context_size` → how many results the model reads (low 3, medium 5, high 10).
- `filters.allowed_domains` → a `site:` hint in the query sent (the engines that know the
  syntax restrict their results; SearXNG passes it through), and a filter on the results
  (the domain or any subdomain), which holds for the engines that ignore the hint.
- `user_location`, `external_web_access`, `search_content_types` → no SearXNG equivalent: a
  country does not say which language to search in (SearXNG's `language`), every search is a
  live one, and results are the instance's `general` category. They are echoed, not applied.

A search that fails (backend down, slow, erroring) fails its item, not the response: the model
is told the search failed, in words that name no URL, and may answer without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from app import ids
from app.config import Settings
from app.errors import InvalidRequest
from app.tools import searxng
from app.tools.base import AddItem, ItemEvents, Opened
from app.tools.citations import Source, citations_in
from app.wire.hosted_tools import WebSearchTool
from app.wire.tools import FunctionTool

log = logging.getLogger("rapport.tools.web_search")

INCLUDE_SOURCES = "web_search_call.action.sources"
RESULTS_PER_SIZE = {"low": 3, "medium": 5, "high": 10}
FUNCTION_NAME = "web_search"
DESCRIPTION = (
    "Search the web for current information. Returns numbered results, each with its title, "
    "URL and a snippet. When your answer uses a result, cite it by its number in square "
    "brackets, for example [1] or [2], right after the statement it supports."
)
PARAMETERS = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "What to search the web for."}},
    "required": ["query"],
    "additionalProperties": False,
}


class WebSearch:
    """One request's web search tool: its settings, and the sources its searches found."""

    def __init__(
        self,
        spec: WebSearchTool,
        settings: Settings,
        http: httpx.AsyncClient,
        include: Sequence[str] | None,
        *,
        index: int = 0,
    ) -> None:
        self.check_backend(spec, settings, index)
        self._spec = spec
        self._base_url = settings.web_search_url or ""
        self._timeout = settings.tool_timeout_seconds
        self._http = http
        self._with_sources = INCLUDE_SOURCES in (include or ())
        self._count = RESULTS_PER_SIZE[spec.search_context_size or "medium"]
        self._domains = _domains(spec)
        self._sources: dict[str, Source] = {}  # url → its numbered source, in order found

    @classmethod
    def check_backend(cls, spec: WebSearchTool, settings: Settings, index: int) -> None:
        """Without a SearXNG instance the tool cannot run: a 400 naming the setting, so the
        caller learns it from the request rather than from a model that cannot search."""
        if not settings.web_search_url:
            raise InvalidRequest(
                f"The '{spec.type}' tool needs a search backend: this server has none "
                "(RAPPORT_WEB_SEARCH_URL, a SearXNG instance, is not set).",
                param=f"tools[{index}].type",
                code="unsupported_parameter",
            )

    def functions(self) -> list[FunctionTool]:
        return [
            FunctionTool(
                name=FUNCTION_NAME, description=DESCRIPTION, parameters=PARAMETERS, strict=False
            )
        ]

    async def prepare(self, context: list[dict[str, Any]], add_item: AddItem) -> None:
        return None  # nothing to list: the one function is known in advance

    def open(self, name: str, arguments: str) -> Opened:
        return Opened(
            {
                "id": ids.new_id(ids.WEB_SEARCH_CALL),
                "type": "web_search_call",
                "status": "in_progress",
                "action": {"type": "search", "query": _query(arguments)},
            }
        )

    async def run(self, item: dict[str, Any], events: ItemEvents) -> str:
        query = str(item["action"].get("query") or "")
        events.emit("response.web_search_call.in_progress")
        events.emit("response.web_search_call.searching")
        found: list[tuple[Source, str]] = []
        failure: str | None = None
        if not query.strip():
            failure = "the query was empty"
        else:
            try:
                found = self._numbered(await self._search(query))
            except searxng.SearchFailed as exc:
                failure = str(exc)
                log.warning("web search failed", extra={"error_kind": type(exc).__name__})
        # A new action dict: the output_item.added event still holds the old one.
        action: dict[str, Any] = {"type": "search", "query": query}
        if self._with_sources:
            action["sources"] = [{"type": "url", "url": source.url} for source, _ in found]
        item["action"] = action
        item["status"] = "failed" if failure else "completed"
        # OpenAI's stream has no failed event for a search; the done item's status tells.
        events.emit("response.web_search_call.completed")
        if failure is not None:
            return f"The web search failed: {failure}. Answer without it, or try again."
        return _as_text(query, found)

    async def _search(self, query: str) -> list[searxng.Result]:
        sent = query if not self._domains else f"{query} {_site_hint(self._domains)}"
        results = await searxng.search(self._http, self._base_url, sent, self._timeout)
        if self._domains:
            results = [result for result in results if _allowed(result.url, self._domains)]
        return results[: self._count]

    def _numbered(self, results: list[searxng.Result]) -> list[tuple[Source, str]]:
        """Each result as a numbered source of this run, with its snippet."""
        numbered: list[tuple[Source, str]] = []
        for result in results:
            source = self._sources.get(result.url)
            if source is None:
                source = Source(len(self._sources) + 1, result.url, result.title)
                self._sources[result.url] = source
            numbered.append((source, result.snippet))
        return numbered

    def annotate(self, text: str) -> list[dict[str, Any]]:
        return citations_in(text, self._sources.values())

    async def aclose(self) -> None:
        return None  # the http client is the process's


def _query(arguments: str) -> str:
    """The model's query: `{"query": …}` as asked; anything else is taken as the query itself
    (a small model may send the bare words), so the item still says what was searched."""
    try:
        decoded = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(decoded, dict) and isinstance(decoded.get("query"), str):
        return str(decoded["query"])
    return arguments


def _domains(spec: WebSearchTool) -> tuple[str, ...]:
    """The allowed domains as bare lower-case host names (a scheme or path a caller added is
    dropped), in the order given."""
    raw = (spec.filters.allowed_domains if spec.filters else None) or []
    domains: list[str] = []
    for entry in raw:
        host = entry.strip().lower()
        host = host.split("://", 1)[-1].split("/", 1)[0].strip(".")
        if host and host not in domains:
            domains.append(host)
    return tuple(domains)


def _site_hint(domains: tuple[str, ...]) -> str:
    return " OR ".join(f"site:{domain}" for domain in domains)


def _allowed(url: str, domains: tuple[str, ...]) -> bool:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == domain or host.endswith(f".{domain}") for domain in domains)


def _as_text(query: str, found: list[tuple[Source, str]]) -> str:
    """What the model reads: `[n] title — url`, then the snippet, per result."""
    if not found:
        return f'The web search for "{query}" found no results.'
    blocks = [
        f"[{source.number}] {source.title} — {source.url}" + (f"\n{snippet}" if snippet else "")
        for source, snippet in found
    ]
    return "\n\n".join(blocks)
