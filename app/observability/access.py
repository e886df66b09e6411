"""The access log and the HTTP metrics: one line and one observation per request.

Wrapped around Litestar's whole ASGI handler (outside its router), so unknown routes and
Litestar's own refusals are logged as well as the API's answers. A line carries the method, the
route template (never the path with its ids, nor the query), the status, the duration, and
what the request noted in its `RequestFacts` — response and project ids, model, upstream time,
tokens. Never a body, a header or a key. A stream is logged when it ends, with its whole
duration. Probes and scrapes (`/health`, `/ready`, `/metrics`) log at DEBUG only, so a
load balancer polling every second does not bury the traffic.

A WebSocket is one long-lived upgrade carrying many responses, so each response on it gets a
line and an observation of its own (`socket_turn`), method `WEBSOCKET`: how much traffic
took the socket rather than HTTP is then as visible as the HTTP traffic itself.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, cast

from litestar import Litestar

from app.http import REQUEST_ID_KEY
from app.observability import facts as request_facts
from app.observability import metrics

# Plain ASGI types: the middleware sees websocket scopes too, and Litestar's own are narrower.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

log = logging.getLogger("rapport.access")
QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})
UNMATCHED = "unmatched"  # the route label of a path no route serves (a 404)
_EVENT_STREAM = b"text/event-stream"
SOCKET_METHOD = "WEBSOCKET"


def install(app: Litestar) -> None:
    """Wrap the app's whole ASGI handler (router, exception handling, tracing) in the log."""
    app.asgi_handler = cast("Any", AccessLog(app.asgi_handler))


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            metrics.ACTIVE_SOCKETS.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                metrics.ACTIVE_SOCKETS.dec()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        facts = request_facts.RequestFacts()
        token = request_facts.current.set(facts)
        answer = _Answer(send)
        try:
            await self.app(scope, receive, answer.send)
        finally:
            if answer.streaming:
                metrics.ACTIVE_STREAMS.dec()
            request_facts.current.reset(token)
            self._record(scope, answer, time.perf_counter() - started, facts)

    def _record(
        self, scope: Scope, answer: _Answer, seconds: float, facts: request_facts.RequestFacts
    ) -> None:
        method: str = scope.get("method", "")
        route: str = scope.get("path_template") or UNMATCHED
        key = (method, route, answer.status)
        children = self._children.get(key)
        if children is None:
            children = (
                metrics.HTTP_REQUESTS.labels(method, route, str(answer.status)),
                metrics.HTTP_DURATION.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                f"{method} {route} {answer.status}",
                extra=_fields(scope, answer, seconds, facts),
            )


class _Answer:
    """Watches what goes out: the status, and whether the answer is an event stream."""

    __slots__ = ("_send", "status", "streaming")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 500  # nothing sent: the connection died before an answer
        self.streaming = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", ()):
                if name == b"content-type" and value.startswith(_EVENT_STREAM):
                    self.streaming = True
                    metrics.ACTIVE_STREAMS.inc()
                    break
        await self._send(message)


class SocketTurn:
    """One response on a WebSocket as its line reports it: `status` is what an HTTP create
    would have answered (200 once it streams, the `error` event's status when refused)."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status = 200


@contextlib.contextmanager
def socket_turn(connection_id: str, route: str, project_id: str) -> Iterator[SocketTurn]:
    """Observe one response on a socket as a request: fresh facts for the pipeline to note
    (the caller sets this in the response's own task), then one line and one count."""
    started = time.perf_counter()
    facts = request_facts.RequestFacts()
    facts.project_id = project_id
    token = request_facts.current.set(facts)
    turn = SocketTurn()
    try:
        yield turn
    finally:
        request_facts.current.reset(token)
        metrics.SOCKET_RESPONSES.labels(str(turn.status)).inc()
        if log.isEnabledFor(logging.INFO):
            fields = {
                "request_id": connection_id,
                "method": SOCKET_METHOD,
                "route": route,
                "status": turn.status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                **_noted(facts),
                "stream": True,
            }
            log.info(f"{SOCKET_METHOD} {route} {turn.status}", extra=fields)


def _fields(
    scope: Scope, answer: _Answer, seconds: float, facts: request_facts.RequestFacts
) -> dict[str, Any]:
    params: dict[str, Any] = scope.get("path_params") or {}
    return {
        "request_id": scope.get(REQUEST_ID_KEY),
        "method": scope.get("method"),
        "route": scope.get("path_template") or UNMATCHED,
        "status": answer.status,
        "duration_ms": round(seconds * 1000, 2),
        **_noted(facts),
        "response_id": facts.response_id or params.get("response_id"),
        "conversation_id": params.get("conversation_id"),
        "stream": True if answer.streaming else None,
    }


def _noted(facts: request_facts.RequestFacts) -> dict[str, Any]:
    """What the pipeline noted while it served the request."""
    upstream = facts.upstream_seconds
    return {
        "response_id": facts.response_id,
        "project_id": facts.project_id,
        "model": facts.model,
        "upstream_ms": round(upstream * 1000, 2) if upstream is not None else None,
        "input_tokens": facts.input_tokens,
        "output_tokens": facts.output_tokens,
    }
