"""How console pages leave: templates with the session's context, HTML error pages, redirects
to sign in, and the security headers every console answer carries.

Errors here are pages, not the API's JSON: a 404 for another project's id (the very NotFound
the API raises), a 403 for a form without its CSRF token, a 500 that names only a request id.
No stack trace or exception message reaches the page or the log.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.console.access import CsrfRefused, SignInRequired, expired_cookie, sign_in_location
from app.console.session import SESSION_COOKIE, ConsoleSession
from app.errors import ApiError
from app.http import REQUEST_ID_KEY

log = logging.getLogger("rapport.console")
AnyRequest = Request[Any, Any, Any]

# Scripts, styles and images only from Rapport itself; no inline script, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    # Pages hold a project's data: never kept by a shared cache or the browser's history.
    (b"cache-control", b"no-store"),
    (b"vary", b"HX-Request, Cookie"),
)


def page(
    template: str,
    session: ConsoleSession | None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    return Template(
        template_name=f"console/{template}",
        context={"session": session, "csrf": session.csrf if session else "", **context},
        status_code=status_code,
        headers=headers,
    )


def is_htmx(request: AnyRequest) -> bool:
    """True for htmx's own requests (not a boosted page load), which take a partial."""
    return request.headers.get("hx-request") == "true"


def navigate(request: AnyRequest, location: str) -> Response[Any]:
    """Go to another page: a 303, or for htmx (whose requests follow redirects unseen) a
    200 with HX-Redirect, which makes it load the page whole."""
    if is_htmx(request):
        return Response(b"", status_code=200, headers={"HX-Redirect": location})
    return Redirect(path=location, status_code=303)


def security_headers(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await app(scope, receive, with_headers)

    return middleware


def on_sign_in_required(request: AnyRequest, exc: SignInRequired) -> Response[Any]:
    location = sign_in_location(exc.path if request.method == "GET" else "/console/responses")
    cookies = [expired_cookie(SESSION_COOKIE)] if SESSION_COOKIE in request.cookies else []
    if is_htmx(request):
        # htmx would swap a redirect's target into the page; HX-Redirect navigates instead.
        return Response(b"", status_code=401, headers={"HX-Redirect": location}, cookies=cookies)
    return Redirect(path=location, status_code=303, cookies=cookies)


def on_csrf_refused(request: AnyRequest, _exc: CsrfRefused) -> Response[Any]:
    return _error(
        request,
        403,
        "This form has expired or did not come from this console. Reload the page and try again.",
    )


def on_api_error(request: AnyRequest, exc: ApiError) -> Response[Any]:
    """The API's own refusals (NotFound for a foreign id, InvalidRequest for a cancel that
    cannot be), with the API's message: it is written for clients and names no secret."""
    return _error(request, exc.status_code, exc.envelope().error.message)


def on_http_exception(request: AnyRequest, exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500:
        return on_unexpected(request, exc)
    message = "There is no such page." if exc.status_code in (404, 405) else str(exc.detail)
    return _error(request, exc.status_code, message)


def on_unexpected(request: AnyRequest, exc: Exception) -> Response[Any]:
    request_id = str(request.scope.get(REQUEST_ID_KEY, "unknown"))
    log.error(
        "console: unhandled exception",
        extra={
            "request_id": request_id,
            "error_kind": type(exc).__name__,
            "path": request.url.path,
        },
    )
    return _error(request, 500, f"Something went wrong on our side (request {request_id}).")


def _error(request: AnyRequest, status: int, message: str) -> Response[Any]:
    session = request.state.get("console_session")
    template = "error_fragment.html" if is_htmx(request) else "error.html"
    return page(template, session, status_code=status, status=status, message=message)


EXCEPTION_HANDLERS: Any = {
    SignInRequired: on_sign_in_required,
    CsrfRefused: on_csrf_refused,
    ApiError: on_api_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
