"""The `gemini` provider: Google's Gemini API, `models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`, with `x-goog-api-key` auth.

Errors come as `{"error": {"code", "message", "status"}}`: 429 RESOURCE_EXHAUSTED and 503
"overloaded" are rate limits, a key Gemini does not take (a 400 API_KEY_INVALID, or 401/403)
is Rapport's own fault, "exceeds the maximum number of tokens" the context-length error.
A whole answer is parsed into the same deltas a stream yields (gemini_translate.deltas), and
those are assembled into the items a stream would have made.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.config import ModelRoute
from app.providers import gemini_translate as translate
from app.providers.assemble import Assembler
from app.providers.base import (
    Delta,
    GenerationRequest,
    GenerationResult,
    StreamEnd,
    UpstreamAuthFailed,
    UpstreamContextTooLong,
    UpstreamProtocolError,
    UpstreamStatusError,
)
from app.providers.catalog import catalog_for
from app.providers.translate import INCOMPLETE_REASONS
from app.providers.upstream_http import (
    Endpoint,
    classify,
    decode_json,
    error_payload,
    upstream_message,
)

_TOO_LONG = "exceeds the maximum number of tokens"


class GeminiProvider:
    def __init__(self, route: ModelRoute, api_key: str | None, client: httpx.AsyncClient) -> None:
        self._route = route
        headers = {"x-goog-api-key": api_key} if api_key else {}
        self._endpoint = Endpoint(client, headers, route, api_key)
        self._base = route.base_url.rstrip("/")

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        catalog = catalog_for(request.tools, request.context)
        body = translate.to_body(request, self._route, catalog)
        url = f"{self._base}/models/{translate.model_path(request, self._route)}:generateContent"
        payload = await self._endpoint.post(url, body, self._status_error)
        if not isinstance(payload, dict):
            raise UpstreamProtocolError("the answer was not a JSON object")
        found, finish = translate.deltas(payload, translate.Calls())
        built = Assembler(catalog)
        for delta in found:
            built.apply(delta)
        reason = INCOMPLETE_REASONS.get(finish or "")
        return GenerationResult(
            output=built.finish("incomplete" if reason else "completed"),
            usage=translate.usage_from(payload.get("usageMetadata")),
            status="incomplete" if reason else "completed",
            incomplete_reason=reason,  # type: ignore[arg-type]
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta | StreamEnd]:
        catalog = catalog_for(request.tools, request.context)
        body = translate.to_body(request, self._route, catalog)
        model = translate.model_path(request, self._route)
        url = f"{self._base}/models/{model}:streamGenerateContent?alt=sse"
        calls = translate.Calls()
        finish: str | None = None
        usage: Any = None
        events = self._endpoint.events(url, body, self._status_error)
        async with contextlib.aclosing(events):
            async for event in events:
                if not event.data:
                    continue
                chunk = decode_json(event.data, "a chunk")
                if isinstance(chunk.get("error"), dict):
                    raise self._chunk_error(chunk["error"])
                found, reason = translate.deltas(chunk, calls)
                for delta in found:
                    yield delta
                finish = reason or finish
                usage = chunk.get("usageMetadata") or usage
        if finish is None:
            raise UpstreamProtocolError("the stream ended before the model finished")
        yield StreamEnd(finish, translate.usage_from(usage))

    def _status_error(self, answer: httpx.Response) -> UpstreamStatusError:
        error = error_payload(answer)
        return self._classified(answer.status_code, upstream_message(answer), error)

    def _chunk_error(self, error: dict[str, Any]) -> UpstreamStatusError:
        code = error.get("code")
        status = code if isinstance(code, int) and code >= 400 else 500
        return self._classified(status, str(error.get("message") or "error"), error)

    def _classified(self, status: int, text: str, error: dict[str, Any]) -> UpstreamStatusError:
        message = f"HTTP {status}: {self._endpoint.redact(text)}"
        reasons = {
            detail.get("reason")
            for detail in error.get("details") or []
            if isinstance(detail, dict)
        }
        if "API_KEY_INVALID" in reasons or "API key not valid" in text:
            return UpstreamAuthFailed(f"HTTP {status}: the upstream refused Rapport's key", status)
        if status < 500 and _TOO_LONG in text:
            return UpstreamContextTooLong(message, status)
        return classify(status, message, overloaded=status == 503 and "overloaded" in text)
