"""The HTTP edge every provider shares: one POST or one event stream over the pooled client,
httpx's faults mapped to the ProviderError tree, and an upstream's error answer made safe to
pass on (every credential scrubbed, any stack trace cut off, its length bounded).

    httpx.TimeoutException     → UpstreamTimeout
    httpx_sse.SSEError         → UpstreamProtocolError (the answer was no event stream)
    any other httpx.HTTPError  → UpstreamUnavailable
    HTTP status ≥ 400          → the provider's `status_error` (429 → rate limited, 401/403 →
                                 auth failed, other 4xx → rejected or context too long, 5xx)
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
from httpx_sse import EventSource, ServerSentEvent, SSEError

from app.config import DEFAULT_MAX_ANSWER_BYTES, ModelRoute
from app.providers import answer_cap
from app.providers.base import (
    UpstreamAuthFailed,
    UpstreamContextTooLong,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
    is_context_length_error,
)
from app.secrets import registry as secret_registry
from app.wire.codec import encoder

MAX_UPSTREAM_MESSAGE = 500
# Where a Python (or similar) stack trace starts inside an upstream's error message.
_STACK_TRACE = re.compile(r'(?m)^\s*(?:Traceback \(most recent call last\)|File "[^"]*", line \d+)')

# What `httpx_sse.aconnect_sse` sends to ask for an event stream.
EVENT_STREAM_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-store"}

# Parsed URLs an endpoint keeps (one per model at most, as Gemini's).
_MOST_URLS = 64

StatusError = Callable[[httpx.Response], UpstreamStatusError]


class Endpoint:
    """One upstream URL with its headers and timeout, and the key its answers must not show."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        route: ModelRoute,
        api_key: str | None,
    ) -> None:
        self.client = client
        self.headers = {"content-type": "application/json", **headers}
        self.timeout_seconds = route.timeout_seconds
        self.timeout = httpx.Timeout(route.timeout_seconds, connect=10.0)
        self.max_answer_bytes = route.max_answer_bytes or DEFAULT_MAX_ANSWER_BYTES
        self.api_key = api_key
        secret_registry.register(api_key)  # every route's key is scrubbed wherever text leaves
        self._extensions = {"timeout": self.timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}
        merged = client.headers.copy()  # what `build_request` would merge in: the client's own
        merged.update(self.headers)
        self._json_headers = merged
        self._event_headers = merged.copy()
        self._event_headers.update(EVENT_STREAM_HEADERS)
        self._plain_client = not client.params and not str(client.base_url)

    def request(self, url: str, content: bytes, *, events: bool = False) -> httpx.Request:
        """A POST of `content` to `url`, made from the URL parsed once and the headers merged
        once, as `AsyncClient.build_request` would make it: that parses the URL string and
        merges the client's headers anew on every call, 60 to 100 µs, a fortieth of a stored
        create's CPU. A client with cookies in its jar takes that way still, which adds them.
        `events`: the headers asking for an event stream."""
        headers = self._event_headers if events else self._json_headers
        if self.client.cookies or not self._plain_client:
            return self.client.build_request(
                "POST", url, content=content, headers=headers, timeout=self.timeout
            )
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _MOST_URLS:  # a route's URLs are few; never let them grow
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return httpx.Request(
            "POST", parsed, content=content, headers=headers, extensions=dict(self._extensions)
        )

    async def post(self, url: str, body: dict[str, Any], status_error: StatusError) -> Any:
        """POST a JSON body and decode the JSON answer."""
        request = self.request(url, encoder.encode(body))
        try:
            answer = await answer_cap.read_capped(self.client, request, self.max_answer_bytes)
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"no answer within {self.timeout_seconds:g} seconds") from None
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"cannot reach the upstream ({type(exc).__name__})") from None
        if answer.status_code >= 400:
            raise status_error(answer)
        try:
            return msgspec.json.decode(answer.content)
        except msgspec.DecodeError:
            raise UpstreamProtocolError(
                "the upstream answered with a body that is not JSON"
            ) from None

    async def events(
        self, url: str, body: dict[str, Any], status_error: StatusError
    ) -> AsyncGenerator[ServerSentEvent, None]:
        """The server-sent events of a streamed POST. Close it (contextlib.aclosing) to abort.
        The body is read to its end rather than left: a connection left mid-body is closed,
        and the next stream would open a new one."""
        try:
            async with self.event_source(url, encoder.encode(body)) as source:
                answer_cap.cap(source.response, self.max_answer_bytes)
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise status_error(source.response)
                async for event in source.aiter_sse():
                    yield event
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"no event within {self.timeout_seconds:g} seconds") from None
        except SSEError:
            raise UpstreamProtocolError(
                "the upstream did not answer with an event stream"
            ) from None
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the stream broke off ({type(exc).__name__})") from None

    @asynccontextmanager
    async def event_source(self, url: str, content: bytes) -> AsyncIterator[EventSource]:
        """The answer to a streamed POST, as `httpx_sse.aconnect_sse` gives it (which added
        its headers to the dict it was given, so every later call sent them too)."""
        answer = await self.client.send(self.request(url, content, events=True), stream=True)
        try:
            yield EventSource(answer)
        finally:
            await answer.aclose()

    def redact(self, text: str) -> str:
        """Upstreams sometimes quote the key they were sent, and some (llama-cpp-python) append
        their own stack trace to an error; neither may travel further. Every credential of
        the process is scrubbed, in any form (app/secrets/), not only this endpoint's key."""
        text = secret_registry.process_scrubber().scrub(text)
        if trace := _STACK_TRACE.search(text):
            text = text[: trace.start()].rstrip() or "no error message"
        return text[:MAX_UPSTREAM_MESSAGE]


def classify(status: int, message: str, *, overloaded: bool = False) -> UpstreamStatusError:
    """The error of a status answer; `overloaded`: the upstream says it is out of capacity
    (Anthropic's 529), which a client should treat as a rate limit."""
    if status == 429 or overloaded:
        return UpstreamRateLimited(message, status)
    if status in (401, 403):
        return UpstreamAuthFailed(f"HTTP {status}: the upstream refused Rapport's key", status)
    if status < 500:
        if is_context_length_error(message):
            return UpstreamContextTooLong(message, status)
        return UpstreamRejected(message, status)
    return UpstreamServerError(message, status)


def decode_json(data: str, what: str) -> dict[str, Any]:
    """One event's JSON object, or a protocol error naming what it was."""
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError:
        raise UpstreamProtocolError(f"the upstream sent {what} that is not JSON") from None
    if not isinstance(value, dict):
        raise UpstreamProtocolError(f"the upstream sent {what} that is not a JSON object")
    return value


def error_payload(answer: httpx.Response) -> dict[str, Any]:
    """The `error` object of an error answer (OpenAI's, Anthropic's and Gemini's all have
    one), or {} when the body has none."""
    try:
        payload = msgspec.json.decode(answer.content)
    except msgspec.DecodeError:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def upstream_message(answer: httpx.Response) -> str:
    try:
        payload = msgspec.json.decode(answer.content)
    except msgspec.DecodeError:
        return answer.reason_phrase or "no error message"
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])  # vLLM's {"object": "error", "message": …}
    return answer.reason_phrase or "no error message"
