"""A SearXNG-shaped search backend for the tests: `GET /search?q=…&format=json` on a loopback port.

Results are deterministic per query: `RESULT_COUNT` results, the i-th on `HOSTS[i]` at
`https://<host>/<slug of the query>/<i+1>`, titled "<query> result <i+1>". The hosts mix
domains, subdomains and look-alikes (`notexample.com`, `example.com.evil.test`) so domain
filters can be checked. Like the engines that do not know `site:`, the server ignores it.

Words in the query steer it (no brackets, so they survive the test upstream's `[tool:…]`):
`@fail=CODE` answers that HTTP status, `@sleep=MS` waits first (giving up when the client
hangs up), `@garbage` answers HTML, `@none` finds nothing, `@count=N` finds N results. Every
request is recorded (path, query parameters, headers) for the tests to read.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qsl

import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HOSTS = (
    "en.wikipedia.org",
    "docs.python.org",
    "www.python.org",
    "example.com",
    "news.example.com",
    "blog.example.org",
    "github.com",
    "notexample.com",
    "developer.mozilla.org",
    "example.com.evil.test",
    "stackoverflow.com",
    "www.rfc-editor.org",
)
RESULT_COUNT = len(HOSTS)
_FAIL = re.compile(r"@fail=(\d{3})")
_SLEEP = re.compile(r"@sleep=(\d+)")
_COUNT = re.compile(r"@count=(\d+)")
_DIRECTIVE = re.compile(r"@\w+(=\d+)?")
_SITE = re.compile(r"(\s+OR)?\s+site:\S+")


@dataclass(frozen=True)
class SearchRequest:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


def words_of(query: str) -> str:
    """The query without steering words and `site:` terms: what the results are about."""
    return " ".join(_SITE.sub("", _DIRECTIVE.sub("", query)).split())


def slug(query: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", words_of(query).lower()).strip("-") or "empty"


def result_url(query: str, index: int) -> str:
    return f"https://{HOSTS[index % len(HOSTS)]}/{slug(query)}/{index + 1}"


def results_for(query: str) -> list[dict[str, Any]]:
    """What the server answers for `query`, in SearXNG's result shape."""
    if "@none" in query:
        return []
    count = int(m.group(1)) if (m := _COUNT.search(query)) else RESULT_COUNT
    about = words_of(query)
    return [
        {
            "url": result_url(query, index),
            "title": f"{about} result {index + 1}",
            "content": f"Snippet {index + 1} about {about}.",
            "engine": "rapport-test",
            "engines": ["rapport-test"],
            "score": 1.0 / (index + 1),
            "category": "general",
            "positions": [index + 1],
        }
        for index in range(count)
    ]


class SearxngTestServer:
    """The backend on 127.0.0.1 in a daemon thread; `url` is what RAPPORT_WEB_SEARCH_URL gets."""

    __test__ = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[SearchRequest] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""

    @property
    def requests(self) -> list[SearchRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def queries(self) -> list[str]:
        return [request.params.get("q", "") for request in self.requests]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        config = uvicorn.Config(
            self,
            interface="asgi3",
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        server = self._server = uvicorn.Server(config)

        async def serve() -> None:
            self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
            await server.serve(sockets=[sock])

        self._thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the SearXNG test server failed to start")
            time.sleep(0.005)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    def stop(self) -> None:
        if self._server and self._thread:
            if self._loop and self._stopping:
                self._loop.call_soon_threadsafe(self._stopping.set)
            self._server.should_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):  # the (empty) body: later receives wait
            pass  # for the client to hang up, which `_pause` listens for
        params = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            self._requests.append(SearchRequest(scope["path"], params, headers))
        if scope["method"] != "GET" or scope["path"] != "/search":
            return await _send(send, 404, b"not found", "text/plain")
        query = params.get("q", "")
        pause = int(m.group(1)) / 1000 if (m := _SLEEP.search(query)) else 0
        if pause and not await self._pause(pause, receive):
            return
        if params.get("format") != "json":  # as an instance without the json format enabled
            return await _send(send, 403, b"<html>403 Forbidden</html>", "text/html")
        if m := _FAIL.search(query):
            return await _send(send, int(m.group(1)), b"<html>error</html>", "text/html")
        if "@garbage" in query:
            return await _send(send, 200, b"<html>not json</html>", "text/html")
        results = results_for(query)
        answer = {
            "query": query,
            "number_of_results": len(results),
            "results": results,
            "answers": [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }
        await _send(send, 200, json.dumps(answer).encode(), "application/json")

    async def _pause(self, seconds: float, receive: Receive) -> bool:
        """Sleep; False (answer nothing) when the client hangs up or the server stops first."""
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(receive())}
        if self._stopping:
            waiters.add(asyncio.ensure_future(self._stopping.wait()))
        done, pending = await asyncio.wait(
            waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        return not done


async def _send(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
