"""The SearXNG JSON API as `web_search` uses it: one GET of `{base}/search?format=json`.

    SearchFailed           the search could not be done; its message is safe to show anyone
    ├── SearchTimedOut     no whole answer within the tool timeout
    ├── SearchUnreachable  no connection (refused, DNS, TLS, reset)
    └── SearchRefused      an answer that is not a JSON result list (HTTP error, HTML, a JSON
                           format the instance has not enabled: SearXNG answers that with 403)

The operator's URL may carry credentials (`https://user:secret@searx…`), and httpx puts the
URL in its exceptions' text, so no message here ever includes the URL or an exception's text:
the model, the client and the log get the kind of failure only.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

# A snippet longer than this is cut: the model gets several, and engines' abstracts are short.
SNIPPET_CHARS = 500


class SearchFailed(Exception):
    """The search did not give results."""


class SearchTimedOut(SearchFailed):
    pass


class SearchUnreachable(SearchFailed):
    pass


class SearchRefused(SearchFailed):
    pass


class Result(msgspec.Struct, frozen=True):
    url: str
    title: str
    snippet: str


class _RawResult(msgspec.Struct):
    url: Any = None
    title: Any = None
    content: Any = None


class _Answer(msgspec.Struct):
    results: list[_RawResult] = []


_decoder = msgspec.json.Decoder(_Answer)


def endpoint(base_url: str) -> str:
    """`RAPPORT_WEB_SEARCH_URL` names the instance (`http://searx:8080`, or one mounted under a
    path); its search route is `/search` below it. A URL that names `/search` already is kept."""
    base = base_url.rstrip("/")
    return base if base.endswith("/search") else f"{base}/search"


async def search(http: httpx.AsyncClient, base_url: str, query: str, within: float) -> list[Result]:
    """The instance's first page of general results for `query`, in its ranking order, each
    with an http(s) URL (others could not be cited). `within`: seconds for all of it."""
    params = {"q": query, "format": "json", "categories": "general", "pageno": "1"}
    try:
        async with asyncio.timeout(within):  # the whole exchange, not each read
            answer = await http.get(
                endpoint(base_url),
                params=params,
                headers={"accept": "application/json"},
                timeout=httpx.Timeout(within),
            )
    except (TimeoutError, httpx.TimeoutException):
        raise SearchTimedOut(f"the search backend did not answer within {within:g} s") from None
    except httpx.HTTPError:
        raise SearchUnreachable("the search backend could not be reached") from None
    if answer.status_code != 200:
        raise SearchRefused(f"the search backend answered HTTP {answer.status_code}")
    try:
        decoded = _decoder.decode(answer.content)
    except msgspec.DecodeError:
        raise SearchRefused("the search backend's answer was not a JSON result list") from None
    return [result for raw in decoded.results if (result := _result(raw)) is not None]


def _result(raw: _RawResult) -> Result | None:
    if not isinstance(raw.url, str) or not _is_web_url(raw.url):
        return None
    title = raw.title.strip() if isinstance(raw.title, str) else ""
    snippet = " ".join(raw.content.split()) if isinstance(raw.content, str) else ""
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[: SNIPPET_CHARS - 1].rstrip() + "…"
    return Result(url=raw.url, title=title or raw.url, snippet=snippet)


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
