"""The `anthropic` provider: Anthropic's Messages API (`POST /v1/messages`), whole and streamed.

Auth is `x-api-key`; every call carries the route's `anthropic-version` and, when it lists
any, `anthropic-beta`. Errors map by status and by Anthropic's error type: 429 and 529
(`overloaded_error`) are rate limits, 401/403 Rapport's own key, "prompt is too long" the
context-length error, other 4xx a rejected request; an `error` event mid-stream maps the same
way by its type.

Streaming: each content block streams as it comes — `text_delta` as text, `thinking_delta` as
reasoning (its `signature_delta` ends the reasoning item, app/providers/native.py), a
`redacted_thinking` block as a reasoning item of its data alone, `tool_use` blocks and their
`input_json_delta` as a tool call — and `message_start`/`message_delta` give the usage and the
stop reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.config import ModelRoute
from app.providers import anthropic_translate as translate
from app.providers.base import (
    Delta,
    GenerationRequest,
    GenerationResult,
    ReasoningDelta,
    ReasoningEnd,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    UpstreamProtocolError,
    UpstreamStatusError,
)
from app.providers.catalog import catalog_for
from app.providers.upstream_http import (
    Endpoint,
    classify,
    decode_json,
    error_payload,
    upstream_message,
)

# An `error` event's type → the status it would have had as an answer.
_EVENT_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicProvider:
    def __init__(self, route: ModelRoute, api_key: str | None, client: httpx.AsyncClient) -> None:
        self._route = route
        headers = {"anthropic-version": route.anthropic_version}
        if api_key:
            headers["x-api-key"] = api_key
        if route.anthropic_beta:
            headers["anthropic-beta"] = ",".join(route.anthropic_beta)
        self._endpoint = Endpoint(client, headers, route, api_key)
        self._url = route.base_url.rstrip("/") + "/messages"

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        catalog = catalog_for(request.tools, request.context)
        body = translate.to_body(request, self._route, catalog)
        payload = await self._endpoint.post(self._url, body, self._status_error)
        return translate.from_message(payload, catalog)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta | StreamEnd]:
        catalog = catalog_for(request.tools, request.context)
        body = {**translate.to_body(request, self._route, catalog), "stream": True}
        blocks = _Blocks()
        events = self._endpoint.events(self._url, body, self._status_error)
        async with contextlib.aclosing(events):
            async for event in events:
                if event.event == "ping" or not event.data:
                    continue
                data = decode_json(event.data, "an event")
                if data.get("type") == "error" or event.event == "error":
                    raise self._event_error(data)
                for delta in blocks.on_event(data):
                    yield delta
        if blocks.stop_reason is None:
            raise UpstreamProtocolError("the stream ended before the model finished")
        finish = translate.FINISH_REASONS.get(blocks.stop_reason, "stop")
        yield StreamEnd(finish, translate.usage_from(blocks.usage))

    def _status_error(self, answer: httpx.Response) -> UpstreamStatusError:
        status = answer.status_code
        kind = error_payload(answer).get("type")
        message = f"HTTP {status}: {self._endpoint.redact(upstream_message(answer))}"
        return classify(status, message, overloaded=status == 529 or kind == "overloaded_error")

    def _event_error(self, data: dict[str, Any]) -> UpstreamStatusError:
        raw = data.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        kind = str(error.get("type") or "api_error")
        status = _EVENT_ERROR_STATUS.get(kind, 500)
        text = self._endpoint.redact(str(error.get("message") or kind))
        return classify(status, f"{kind}: {text}", overloaded=kind == "overloaded_error")


class _Blocks:
    """The open content blocks of one streamed message, and what it said about itself."""

    def __init__(self) -> None:
        self.kinds: dict[int, str] = {}
        self.arguments: dict[int, bool] = {}  # tool blocks: did any input arrive
        self.signatures: dict[int, str] = {}
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None

    def on_event(self, data: dict[str, Any]) -> list[Delta]:
        kind = data.get("type")
        index = int(data.get("index") or 0)
        if kind == "message_start":
            self._merge_usage((data.get("message") or {}).get("usage"))
        elif kind == "content_block_start":
            return self._start(index, data.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._delta(index, data.get("delta") or {})
        elif kind == "content_block_stop":
            return self._stop(index)
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            self._merge_usage(data.get("usage"))
        return []

    def _start(self, index: int, block: dict[str, Any]) -> list[Delta]:
        kind = str(block.get("type"))
        self.kinds[index] = kind
        if kind == "tool_use":
            self.arguments[index] = False
            return [ToolCallDelta(index, str(block.get("id") or ""), block.get("name"), "")]
        if kind == "redacted_thinking":
            return [ReasoningEnd(translate.thinking_state(block))]
        if kind == "text" and block.get("text"):
            return [TextDelta(str(block["text"]))]
        if kind == "thinking" and block.get("thinking"):
            return [ReasoningDelta(str(block["thinking"]))]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[Delta]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [TextDelta(str(delta["text"]))]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [ReasoningDelta(str(delta["thinking"]))]
        if kind == "signature_delta":
            self.signatures[index] = self.signatures.get(index, "") + str(delta.get("signature"))
        elif kind == "input_json_delta" and delta.get("partial_json"):
            self.arguments[index] = True
            return [ToolCallDelta(index, None, None, str(delta["partial_json"]))]
        return []

    def _stop(self, index: int) -> list[Delta]:
        kind = self.kinds.pop(index, None)
        if kind == "thinking":
            block = {"type": "thinking", "signature": self.signatures.pop(index, "")}
            return [ReasoningEnd(translate.thinking_state(block))]
        if kind == "tool_use" and not self.arguments.pop(index, True):
            return [ToolCallDelta(index, None, None, "{}")]  # a call without input
        return []

    def _merge_usage(self, raw: Any) -> None:
        """message_start carries the input counts, message_delta the output's (cumulative)."""
        if isinstance(raw, dict):
            self.usage.update({key: value for key, value in raw.items() if value is not None})
