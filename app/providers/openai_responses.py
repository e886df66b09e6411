"""The `openai-responses` provider: an upstream that is itself a Responses server (OpenAI,
Azure OpenAI, vLLM, another Rapport), `POST {base_url}/responses`, whole and streamed.

Rapport keeps the state and the upstream none (`store: false`, responses_translate.py). Its
stream events become deltas — text, refusals, function-call arguments — and the items Rapport
does not build itself (reasoning, with its encrypted content; hosted tool calls the upstream
ran) arrive whole when the upstream finishes them. Errors are OpenAI's: the HTTP statuses as
for chat-completions, and a `response.failed` or `error` event by its code.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.config import ModelRoute
from app.providers import responses_translate as translate
from app.providers.assemble import Assembler
from app.providers.base import (
    Delta,
    GenerationRequest,
    GenerationResult,
    StreamEnd,
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

# A failed response's (or error event's) code → the status its HTTP answer would have had.
_CODE_STATUS = {
    "rate_limit_exceeded": 429,
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
    "invalid_request_error": 400,
    "server_error": 500,
}


class OpenAIResponsesProvider:
    def __init__(self, route: ModelRoute, api_key: str | None, client: httpx.AsyncClient) -> None:
        self._route = route
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._endpoint = Endpoint(client, headers, route, api_key)
        self._url = route.base_url.rstrip("/") + "/responses"

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        catalog = catalog_for(request.tools, request.context)
        body = translate.to_body(request, self._route, catalog, stream=False)
        payload = await self._endpoint.post(self._url, body, self._status_error)
        if not isinstance(payload, dict) or not isinstance(payload.get("output"), list):
            raise UpstreamProtocolError("the answer was not a Response")
        if payload.get("status") == "failed":
            raise self._failed(payload.get("error"))
        built = Assembler(catalog)
        for delta in translate.output_deltas(payload["output"]):
            built.apply(delta)
        reason = INCOMPLETE_REASONS.get(translate.finish_reason(payload))
        return GenerationResult(
            output=built.finish("incomplete" if reason else "completed"),
            usage=translate.usage_from(payload.get("usage")),
            status="incomplete" if reason else "completed",
            incomplete_reason=reason,  # type: ignore[arg-type]
            service_tier=payload.get("service_tier"),
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta | StreamEnd]:
        catalog = catalog_for(request.tools, request.context)
        body = translate.to_body(request, self._route, catalog, stream=True)
        final: dict[str, Any] | None = None
        events = self._endpoint.events(self._url, body, self._status_error)
        async with contextlib.aclosing(events):
            async for event in events:
                if not event.data or event.data == "[DONE]":
                    continue
                data = decode_json(event.data, "an event")
                kind = data.get("type")
                if kind == "error":
                    raise self._failed(data)
                if kind == "response.failed":
                    raise self._failed((data.get("response") or {}).get("error"))
                if kind in ("response.completed", "response.incomplete"):
                    final = data.get("response") or {}
                    continue
                for delta in translate.event_deltas(data):
                    yield delta
        if final is None:
            raise UpstreamProtocolError("the stream ended before the model finished")
        usage = translate.usage_from(final.get("usage"))
        yield StreamEnd(translate.finish_reason(final), usage, final.get("service_tier"))

    def _status_error(self, answer: httpx.Response) -> UpstreamStatusError:
        status = answer.status_code
        code = str(error_payload(answer).get("code") or "")
        message = f"HTTP {status}: {self._endpoint.redact(upstream_message(answer))}"
        return classify(status, f"{message} ({code})" if code else message)

    def _failed(self, error: Any) -> UpstreamStatusError:
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or "server_error")
        message = self._endpoint.redact(str(error.get("message") or code))
        return classify(_CODE_STATUS.get(code, 500), f"{code}: {message}")
