"""The ApiError family and the one place OpenAI's error object is rendered.

Every non-2xx answer is `{"error": {"message", "type", "param", "code"}}`, all four keys present,
because the OpenAI SDK reads `code`, `param` and `type` from there to build its exceptions.

    ApiError
    ├── InvalidRequest        400 invalid_request_error
    ├── Unauthorized          401 invalid_request_error
    ├── NotFound              404 invalid_request_error
    ├── Conflict              409 invalid_request_error
    ├── RateLimited           429 requests
    └── ServerFault           5xx server_error

Answers that would create a duplicate response if repeated carry `x-should-retry: false`, which
the SDK honours before its own status-based retry policy.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from app.secrets import registry as secret_registry


class ErrorBody(msgspec.Struct):
    """OpenAI's `Error` schema: `param` and `code` are nullable, never omitted."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


class ApiError(Exception):
    """An error with an HTTP status that the client is meant to see, in OpenAI's shape."""

    status_code: ClassVar[int] = 400
    error_type: ClassVar[str] = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def envelope(self) -> ErrorEnvelope:
        """The error object, with any credential of the process scrubbed from its message
        (an upstream's words can quote the key it was sent)."""
        message = secret_registry.process_scrubber().scrub(self.message)
        return ErrorEnvelope(ErrorBody(message, self.error_type, self.param, self.code))


class InvalidRequest(ApiError):
    status_code = 400


class Unauthorized(ApiError):
    status_code = 401


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class RateLimited(ApiError):
    status_code = 429
    error_type = "requests"


class ServerFault(ApiError):
    """A fault of ours or of the upstream; `status_code` may be set per instance (500/502/504)."""

    status_code = 500
    error_type = "server_error"

    def __init__(self, message: str, *, status_code: int = 500, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status_code = status_code  # type: ignore[misc]


def invalid_value(param: str, value: object, supported: list[str] | None = None) -> InvalidRequest:
    """OpenAI's house wording for a value outside an enum."""
    message = f"Invalid value: '{value}'."
    if supported:
        message += " Supported values are: " + ", ".join(f"'{item}'" for item in supported) + "."
    return InvalidRequest(message, param=param, code="invalid_value")


def not_supported(param: str, what: str) -> InvalidRequest:
    """A parameter OpenAI has but Rapport does not implement yet: said, never silently ignored."""
    return InvalidRequest(
        f"{what} is not supported by this Rapport server yet.",
        param=param,
        code="unsupported_parameter",
    )


def unexpected(request_id: str, stored_id: str | None = None) -> ServerFault:
    """What a client is told of a bug of ours: that it happened and the id to quote, no more
    (a message or a stack trace could hold a secret). When the request had already stored
    `stored_id`, a retry would create a second one: it is named, and retrying is refused."""
    if stored_id is None:
        return ServerFault(
            "The server had an error while processing your request. Sorry about that! You can "
            f"retry your request. (Please include the request ID {request_id} in your message.)"
        )
    return ServerFault(
        "The server had an error while processing your request, after it stored "
        f"{stored_id}: retrieve it rather than sending the request again. (Please include the "
        f"request ID {request_id} in your message.)",
        headers={"x-should-retry": "false"},
    )


def response_not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.")
