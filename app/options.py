"""`OPTIONS` answers whose `Allow` lists every method of the path, not only some of them.

Litestar 2 builds the automatic OPTIONS handler of a path with the first route registered for
it; when more handlers join the path later (GET and DELETE on `/v1/responses/{id}`), the merged
route knows all the methods but the OPTIONS handler still lists the first ones only
(litestar-org/litestar#4169, fixed in v3). This middleware rewrites that one header from the
merged route, so `Allow` matches the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_NOT_METHODS = frozenset({"websocket", "asgi"})


def allowed_methods(app: Litestar, route_path: str) -> str | None:
    """The `Allow` value of a route path as the router holds it (None: no such HTTP route)."""
    handlers = app.route_handler_method_map.get(route_path)
    if not handlers:
        return None
    methods = {method for method in handlers if method not in _NOT_METHODS}
    return ", ".join(sorted(methods | {"OPTIONS"})) if methods else None


def options_allow_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "OPTIONS":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start":
                allow = _allow_for(scope)
                if allow is not None:
                    headers = [
                        (name, value)
                        for name, value in message.get("headers", [])
                        if name.lower() != b"allow"
                    ]
                    message["headers"] = [*headers, (b"allow", allow.encode())]
            await send(message)

        await app(scope, receive, send_with_allow)

    return middleware


def _allow_for(scope: Scope) -> str | None:
    """The full method list of the path the router matched (its OPTIONS handler's own path)."""
    handler: Any = scope.get("route_handler")
    if handler is None:
        return None
    paths = getattr(handler, "paths", None) or ()
    app = Litestar.from_scope(scope)
    for path in paths:
        if (allow := allowed_methods(app, path)) is not None:
            return allow
    return None
