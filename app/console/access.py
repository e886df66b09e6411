"""Who may see a console page: the session guard, CSRF on every unsafe request, and the
responses for those who may not (a redirect to sign in, a 403 for a stale form).

The guard runs before every console handler not marked `public`: it opens the session cookie,
checks that its key is still live (one primary-key read, so a revoked key is signed out at
once), and, for anything but GET/HEAD, that the request carries the session's CSRF token — in
the `_csrf` form field of a plain form, or the `X-CSRF-Token` header htmx sends. The cookie is
SameSite=Strict as well; the token is what holds when a browser ignores that.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers.base import BaseRouteHandler

from app.console.queries import keys as key_queries
from app.console.session import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SESSION_SECONDS,
    ConsoleSession,
    read_session,
    tokens_match,
)
from app.db.session import unit_of_work
from app.runtime import Runtime

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
SIGN_IN_PATH = "/console/sign-in"


class SignInRequired(Exception):
    """No session, an expired or forged one, or one whose key was revoked."""

    def __init__(self, path: str) -> None:
        super().__init__("sign in required")
        self.path = path


class CsrfRefused(Exception):
    """An unsafe request without the session's token: a stale form or another site's post."""


async def require_session(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if handler.opt.get("public"):
        return
    runtime: Runtime = connection.app.state.runtime
    session = read_session(runtime.sealer, connection.cookies.get(SESSION_COOKIE))
    if session is None or not await _key_is_live(runtime, session):
        raise SignInRequired(connection.url.path)
    connection.state.console_session = session
    if connection.scope["method"] not in SAFE_METHODS:  # type: ignore[typeddict-item]
        await check_csrf(connection, session.csrf)


async def check_csrf(connection: ASGIConnection[Any, Any, Any, Any], expected: str) -> None:
    given = connection.headers.get(CSRF_HEADER)
    if given is None and isinstance(connection, Request):
        form = await connection.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not tokens_match(expected, given):
        raise CsrfRefused


async def _key_is_live(runtime: Runtime, session: ConsoleSession) -> bool:
    async with unit_of_work(runtime.sessions) as db:
        return await key_queries.is_live(db, session.project_id, session.key_id)


def provide_session(request: Request[Any, Any, Any]) -> ConsoleSession:
    session: ConsoleSession = request.state.console_session
    return session


def sign_in_location(path: str) -> str:
    """Where an unsigned visitor is sent: the sign-in form, coming back to `path` after."""
    return f"{SIGN_IN_PATH}?next={quote(path, safe='/')}" if safe_next(path) else SIGN_IN_PATH


def safe_next(path: str | None) -> bool:
    """Only console pages: never another host (`//evil`), never the sign-in page itself."""
    return (
        bool(path)
        and path is not None
        and path.startswith("/console/")
        and not path.startswith("//")
        and "\\" not in path
        and not path.startswith(SIGN_IN_PATH)
    )


def session_cookie(token: str, secure: bool) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        max_age=SESSION_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def expired_cookie(name: str) -> Cookie:
    return Cookie(key=name, value="", max_age=0, path=COOKIE_PATH, httponly=True, samesite="strict")


def is_secure(request: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return request.url.scheme == "https"
