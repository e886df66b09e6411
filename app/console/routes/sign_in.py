"""Signing in with a gateway key (posted, never in a URL), and out."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from app.auth import Authenticator
from app.console.access import (
    expired_cookie,
    is_secure,
    safe_next,
    session_cookie,
)
from app.console.pages import page
from app.console.session import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_SECONDS,
    ConsoleSession,
    issue_session,
    issue_sign_in,
    read_session,
    sign_in_csrf,
    tokens_match,
)
from app.errors import Unauthorized
from app.runtime import Runtime

AnyRequest = Request[Any, Any, Any]
HOME = "/console/responses"


class SignInController(Controller):
    @get("/", opt={"public": True})
    async def home(self) -> Redirect:
        return Redirect(path=HOME, status_code=303)

    @get("/sign-in", opt={"public": True})
    async def form(self, request: AnyRequest) -> Template | Redirect:
        runtime: Runtime = request.app.state.runtime
        if read_session(runtime.sealer, request.cookies.get(SESSION_COOKIE)) is not None:
            return Redirect(path=HOME, status_code=303)
        return _form(request, runtime, next_path=request.query_params.get("next"))

    @post("/sign-in", opt={"public": True}, status_code=303)
    async def sign_in(self, request: AnyRequest) -> Template | Redirect:
        runtime: Runtime = request.app.state.runtime
        form = await request.form()
        next_path = _field(form.get("next"))
        expected = sign_in_csrf(runtime.sealer, request.cookies.get(SIGN_IN_COOKIE))
        if expected is None or not tokens_match(expected, _field(form.get("_csrf"))):
            return _form(
                request, runtime, next_path, "The sign-in form expired. Please try again.", 403
            )
        authenticator: Authenticator = request.app.state.authenticator
        secret = _field(form.get("key")).strip()
        try:
            caller = await authenticator.authenticate(f"Bearer {secret}")
        except Unauthorized:
            # The key is never echoed, not even masked: the form comes back empty.
            return _form(request, runtime, next_path, "That is not a live gateway key.", 401)
        _, token = issue_session(runtime.sealer, caller)
        return Redirect(
            path=next_path if safe_next(next_path) else HOME,
            status_code=303,
            cookies=[session_cookie(token, is_secure(request)), expired_cookie(SIGN_IN_COOKIE)],
        )

    @post("/sign-out", status_code=303)
    async def sign_out(self, console_session: NamedDependency[ConsoleSession]) -> Redirect:
        return Redirect(
            path="/console/sign-in", status_code=303, cookies=[expired_cookie(SESSION_COOKIE)]
        )


def _form(
    request: AnyRequest,
    runtime: Runtime,
    next_path: str | None,
    problem: str | None = None,
    status_code: int = 200,
) -> Template:
    csrf, token = issue_sign_in(runtime.sealer)
    response = page(
        "sign_in.html",
        None,
        status_code=status_code,
        sign_in_csrf=csrf,
        next_path=next_path if safe_next(next_path) else "",
        problem=problem,
    )
    response.cookies.append(
        Cookie(
            key=SIGN_IN_COOKIE,
            value=token,
            max_age=SIGN_IN_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=is_secure(request),
        )
    )
    return response


def _field(value: Any) -> str:
    return value if isinstance(value, str) else ""
