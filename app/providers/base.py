"""What a provider is, what it is asked and answers, and the errors it may raise.

A provider's faults never escape as httpx exceptions: each adapter maps them at its boundary to
this tree, and each class knows the `error` stored on the failed response and the HTTP answer
the client gets (always with `x-should-retry: false`, because the failed response is already
stored and a blind SDK retry would create a second one).

    ProviderError                      stored code          HTTP
    ├── UpstreamTimeout                server_error         504 server_error
    ├── ServerShuttingDown             server_error         503 server_error
    ├── UpstreamUnavailable            server_error         502 server_error
    ├── UpstreamProtocolError          server_error         502 server_error
    │   └── UpstreamAnswerTooLarge     server_error         502 server_error
    └── UpstreamStatusError
        ├── UpstreamRateLimited        rate_limit_exceeded  429 rate_limit_exceeded
        ├── UpstreamRejected           invalid_prompt       400 / 404 invalid_request_error
        │   └── UpstreamContextTooLong invalid_prompt    400 context_length_exceeded
        ├── UpstreamAuthFailed         server_error         502 server_error
        └── UpstreamServerError        server_error         502 server_error
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal, Protocol

import msgspec

from app.config import ModelRoute
from app.errors import ApiError, InvalidRequest, NotFound, RateLimited, ServerFault
from app.wire.responses import CreateResponseRequest, ResponseUsage
from app.wire.tools import Tool

NO_RETRY = {"x-should-retry": "false"}


class GenerationRequest(msgspec.Struct, frozen=True):
    """One generation: the rebuilt context in order, plus the request's parameters."""

    model: str
    instructions: str | None
    context: list[dict[str, Any]]
    params: CreateResponseRequest
    tools: tuple[Tool, ...] = ()


class GenerationResult(msgspec.Struct):
    output: list[dict[str, Any]]
    usage: ResponseUsage
    status: Literal["completed", "incomplete"]
    incomplete_reason: Literal["max_output_tokens", "content_filter"] | None = None
    service_tier: str | None = None


class TextDelta(msgspec.Struct, frozen=True):
    text: str
    logprobs: tuple[dict[str, Any], ...] = ()  # part-shaped, only when the client asked


class RefusalDelta(msgspec.Struct, frozen=True):
    text: str


class ReasoningDelta(msgspec.Struct, frozen=True):
    text: str


class ToolCallDelta(msgspec.Struct, frozen=True):
    """A piece of one tool call; `index` tells calls apart, the first piece carries id and name."""

    index: int
    call_id: str | None
    name: str | None
    arguments: str


class ReasoningEnd(msgspec.Struct, frozen=True):
    """One reasoning block is whole. `encrypted_content` is what the upstream needs back with
    it on later turns (a signature, a redacted block: app/providers/native.py); with no
    reasoning item open (a redacted block, a signature alone) it makes one of its own."""

    encrypted_content: str | None = None


class ForeignItem(msgspec.Struct, frozen=True):
    """A whole output item the upstream made that Rapport relays as it is (a hosted tool the
    upstream ran, a reasoning item a Responses upstream returned), under an id of Rapport's."""

    item: dict[str, Any]


class StreamEnd(msgspec.Struct, frozen=True):
    """The last thing a provider's stream yields: why it stopped, and what it cost."""

    finish_reason: str | None
    usage: ResponseUsage
    service_tier: str | None = None


Delta = TextDelta | RefusalDelta | ReasoningDelta | ToolCallDelta | ReasoningEnd | ForeignItem


class Provider(Protocol):
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Run one generation to its end; raise a ProviderError on any upstream fault."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[Delta | StreamEnd]:
        """Yield deltas as the upstream produces them, then exactly one StreamEnd.

        Closing the iterator early aborts the upstream call. Faults raise ProviderError, also
        after some deltas were yielded.
        """
        ...


class ProviderError(Exception):
    stored_code: ClassVar[str] = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def api_error(self, response_id: str | None) -> ApiError:
        return ServerFault(
            _with_id(f"The upstream model provider failed: {self.message}", response_id),
            status_code=502,
            headers=NO_RETRY,
        )


class UpstreamTimeout(ProviderError):
    def api_error(self, response_id: str | None) -> ApiError:
        return ServerFault(
            _with_id(f"The upstream model provider timed out: {self.message}", response_id),
            status_code=504,
            headers=NO_RETRY,
        )


class UpstreamUnavailable(ProviderError):
    pass


class UpstreamProtocolError(ProviderError):
    pass


class ServerShuttingDown(ProviderError):
    """The server shut down mid-call (providers/draining.py): the response is stored failed,
    and a new request, to this server's successor, is the way on."""

    def api_error(self, response_id: str | None) -> ApiError:
        return ServerFault(
            _with_id(
                f"The server shut down before the response ended: {self.message}", response_id
            ),
            status_code=503,
            headers=NO_RETRY,
        )


class UpstreamAnswerTooLarge(UpstreamProtocolError):
    """The answer passed its byte cap (RAPPORT_MAX_ANSWER_BYTES): read on, it would hold the
    process's memory, and tokenizing it, its CPU."""


class UpstreamStatusError(ProviderError):
    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class UpstreamRateLimited(UpstreamStatusError):
    stored_code = "rate_limit_exceeded"

    def api_error(self, response_id: str | None) -> ApiError:
        return RateLimited(
            _with_id(f"The upstream model provider is rate limited: {self.message}", response_id),
            code="rate_limit_exceeded",
            headers=NO_RETRY,
        )


class UpstreamRejected(UpstreamStatusError):
    """The upstream refused the request itself (4xx): a problem with what was asked."""

    stored_code = "invalid_prompt"

    def api_error(self, response_id: str | None) -> ApiError:
        message = _with_id(
            f"The upstream model provider rejected the request: {self.message}", response_id
        )
        if self.status_code == 404:
            return NotFound(message, param="model", code="model_not_found", headers=NO_RETRY)
        return InvalidRequest(message, headers=NO_RETRY)


class UpstreamContextTooLong(UpstreamRejected):
    """The upstream's own context-length refusal (Rapport's count fell short of its tokenizer's):
    the client gets OpenAI's `context_length_exceeded`, whatever words the upstream used. The
    stored response keeps `invalid_prompt`: a Response's error codes are a closed list."""

    def api_error(self, response_id: str | None) -> ApiError:
        message = (
            "Your input exceeds the context window of this model. "
            "Please adjust your input and try again."
        )
        return InvalidRequest(
            _with_id(message, response_id),
            param="input",
            code="context_length_exceeded",
            headers=NO_RETRY,
        )


# How OpenAI, vLLM, llama.cpp, Ollama and TGI word a prompt too long for the model.
_CONTEXT_LENGTH_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "exceed_context_size",
    "exceeds the available context",
    "prompt is too long",
    "input is too long",
)


def is_context_length_error(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _CONTEXT_LENGTH_MARKERS)


class UpstreamAuthFailed(UpstreamStatusError):
    """401/403 from the upstream: Rapport's own upstream key is wrong, not the caller's."""


class UpstreamServerError(UpstreamStatusError):
    pass


def _with_id(message: str, response_id: str | None) -> str:
    if response_id is None:
        return message
    separator = " " if message.endswith((".", "!", "?")) else ". "
    return f"{message}{separator}The response {response_id} was stored with status 'failed'."


__all__ = [
    "Delta",
    "ForeignItem",
    "GenerationRequest",
    "GenerationResult",
    "ModelRoute",
    "Provider",
    "ProviderError",
    "ReasoningDelta",
    "ReasoningEnd",
    "RefusalDelta",
    "StreamEnd",
    "TextDelta",
    "ToolCallDelta",
    "UpstreamAuthFailed",
    "UpstreamContextTooLong",
    "UpstreamProtocolError",
    "UpstreamRateLimited",
    "UpstreamRejected",
    "UpstreamServerError",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "is_context_length_error",
]
