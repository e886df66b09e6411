"""HTTP plumbing shared by the routes: request ids, error rendering and query-list parsing.

Every answer carries `x-request-id` (the SDK surfaces it as `request_id`), and every error, ours
or Litestar's, leaves in OpenAI's shape. Unexpected exceptions are logged by class and request
id only: no stack trace or message (which could hold a secret) reaches a client or a log.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app import acceptance, ids, outage
from app.errors import (
    ApiError,
    ErrorBody,
    ErrorEnvelope,
    InvalidRequest,
    invalid_value,
    unexpected,
)
from app.wire import codec
from app.wire.common import INCLUDE_VALUES

log = logging.getLogger("rapport.http")
REQUEST_ID_KEY = "rapport_request_id"


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        request_id = ids.new_id(ids.REQUEST)
        scope[REQUEST_ID_KEY] = request_id  # type: ignore[literal-required]
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


def error_response(status: int, envelope: ErrorEnvelope, headers: dict[str, str]) -> Response[Any]:
    return Response(
        content=codec.encoder.encode(envelope),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def handle_api_error(_request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return error_response(exc.status_code, exc.envelope(), exc.headers)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own refusals (unknown route, wrong method, bad query) in OpenAI's shape."""
    if isinstance(exc, NotFoundException) or exc.status_code == 405:
        message = f"Invalid URL ({request.method} {request.url.path})"
    else:
        message = str(exc.detail)
    kind = "server_error" if exc.status_code >= 500 else "invalid_request_error"
    return error_response(
        exc.status_code,
        ErrorEnvelope(ErrorBody(message, kind, None, None)),
        dict(exc.headers or {}),
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug of ours: a 500 that says so. After an accepted create it names the stored id and
    says `x-should-retry: false` — a blind retry would create the response again."""
    request_id = request.scope.get(REQUEST_ID_KEY, "unknown")
    stored = acceptance.stored_id()
    log.error(
        "unhandled exception",
        extra={
            "request_id": request_id,
            "error_kind": type(exc).__name__,
            "path": request.url.path,
            "stored_id": stored,
        },
    )
    fault = unexpected(str(request_id), stored)
    return error_response(fault.status_code, fault.envelope(), fault.headers)


def handle_store_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The database or Redis did not answer: OpenAI's 503 with `retry-after` (app/outage.py);
    any other error of the same classes is a bug and goes to `handle_unexpected`."""
    if not outage.is_unreachable(exc):
        return handle_unexpected(request, exc)
    stored = acceptance.stored_id()
    log.warning(
        "store unavailable",
        extra={
            "request_id": request.scope.get(REQUEST_ID_KEY, "unknown"),
            "error_kind": type(exc).__name__,
            "path": request.url.path,
            "stored_id": stored,
        },
    )
    fault = outage.unavailable(stored, uncertain=isinstance(exc, outage.CommitUncertain))
    return error_response(fault.status_code, fault.envelope(), fault.headers)


# Path parameters that name our objects, and the prefix each must have.
_PATH_IDS = {"response_id": ids.RESPONSE, "conversation_id": ids.CONVERSATION}


async def check_path_ids(request: Request[Any, Any, Any]) -> None:
    """A controller's `before_request`: ids in the path as OpenAI checks them (a wrong prefix is
    its 400 `invalid_value`, not a 404; a NUL byte never reaches a query). A coroutine although
    it never awaits: Litestar runs a plain function hook in a worker thread, and that hop cost
    0.3 ms on every request."""
    for name, prefix in _PATH_IDS.items():
        value = request.path_params.get(name)
        if value is not None:
            ids.expect(value, prefix, name)
    for name in ("item_id", "prompt_id"):
        value = request.path_params.get(name)
        if value is not None and not ids.is_well_formed(value):
            ids.expect(value, "", name)


def query_list(request: Request[Any, Any, Any], name: str) -> list[str]:
    """A list in the query as the SDK sends it (`include[]=a&include[]=b`) or repeated keys."""
    params = request.query_params
    return [*params.getall(f"{name}[]", []), *params.getall(name, [])]


def include_param(request: Request[Any, Any, Any]) -> list[str]:
    """`include` from the query, each value checked against OpenAI's enum."""
    values = query_list(request, "include")
    for index, value in enumerate(values):
        if value not in INCLUDE_VALUES:
            raise invalid_value(f"include[{index}]", value, sorted(INCLUDE_VALUES))
    return values


def bool_param(raw: str | None, name: str, default: bool = False) -> bool:
    """`true`/`false` as the SDK sends booleans in a query; OpenAI refuses `1` and `yes`."""
    if raw is None:
        return default
    if raw in ("true", "false"):
        return raw == "true"
    raise InvalidRequest(
        f"Invalid value for '{name}': expected a boolean ('true' or 'false'), got '{raw}'.",
        param=name,
        code="invalid_type",
    )


# Query integers index 32-bit columns and 64-bit Redis stream ids: a larger one is a 400 here,
# not a database error later.
MAX_QUERY_INT = 2**31 - 1


def int_param(
    raw: str | None, name: str, default: int, *, minimum: int = -1, maximum: int = MAX_QUERY_INT
) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(
            f"Invalid type for '{name}': expected an integer, but got '{raw}' instead.",
            param=name,
            code="invalid_type",
        ) from None
    if value < minimum:
        raise InvalidRequest(
            f"Invalid '{name}': integer below minimum value. Expected a value at least {minimum}.",
            param=name,
            code="integer_below_min_value",
        )
    if value > maximum:
        raise InvalidRequest(
            f"Invalid '{name}': integer above maximum value. Expected a value at most {maximum}.",
            param=name,
            code="integer_above_max_value",
        )
    return value
