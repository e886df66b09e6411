"""The `openai-chat` provider: any OpenAI-compatible `/chat/completions` server over httpx.

One pooled AsyncClient serves every route; each call sets its own timeout from the route.
Connection failures are retried by the transport (nothing reached the upstream, so a retry
cannot double-charge or double-generate); nothing else is retried here. An upstream that
cannot be reached is named (its URL, without credentials or query) with the setting that
points there, since a wrong or missing base URL is the usual cause.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
from httpx_sse import SSEError

from app import offload, redact
from app.config import ModelRoute
from app.providers import answer_cap, chunks, logprobs, translate
from app.providers.base import (
    Delta,
    GenerationRequest,
    GenerationResult,
    StreamEnd,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.providers.catalog import catalog_for
from app.providers.upstream_http import Endpoint, classify, upstream_message
from app.wire.codec import encoder
from app.wire.models import Model

_NOT_CONNECTED, _ANSWERED, _STREAMING = 0, 1, 2


class ChatCompletionsProvider:
    def __init__(
        self,
        route: ModelRoute,
        api_key: str | None,
        client: httpx.AsyncClient,
        setting: str | None = None,
    ) -> None:
        self._route = route
        self._client = client
        self._url = route.base_url.rstrip("/") + "/chat/completions"
        self._models_url = route.base_url.rstrip("/") + "/models"
        where = setting or f"the base_url of the route {route.name!r} in the models file"
        self._unreachable = (
            f"cannot reach the upstream at {redact.plain_url(self._url)} ({{kind}}); "
            f"is it running? It is set by {where}"
        )
        self._api_key = api_key
        authorization = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._endpoint = Endpoint(client, authorization, route, api_key)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        tools = catalog_for(request.tools, request.context)
        body = await offload.off_loop(
            lambda: translate.to_chat_body(request, self._route, tools), request.context
        )
        sent = self._endpoint.request(self._url, encoder.encode(body))
        try:
            answer = await answer_cap.read_capped(
                self._client, sent, self._endpoint.max_answer_bytes
            )
        except httpx.TimeoutException:
            raise UpstreamTimeout(
                f"no answer within {self._route.timeout_seconds:g} seconds"
            ) from None
        except httpx.HTTPError as exc:
            raise self._cannot_reach(exc) from None
        if answer.status_code >= 400:
            raise self._status_error(answer)
        try:
            payload = msgspec.json.decode(answer.content)
        except msgspec.DecodeError:
            raise UpstreamProtocolError(
                "the upstream answered with a body that is not JSON"
            ) from None
        try:
            return translate.from_chat_completion(
                payload, tools, with_logprobs=logprobs.wanted(request.params.include)
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            # A 200 whose fields have the wrong types is the upstream's fault: a 502, not ours.
            raise UpstreamProtocolError(
                "the upstream answered with fields of the wrong types"
            ) from None

    async def list_models(self, timeout_seconds: float) -> list[Model]:
        """The upstream's own `GET /models`, or nothing when it cannot say: a model list is a
        convenience, so an unreachable or odd upstream is never an error here."""
        try:
            answer = await self._client.get(
                self._models_url, headers=self._endpoint.headers, timeout=timeout_seconds
            )
            if answer.status_code != 200:
                return []
            listed = msgspec.json.decode(answer.content, type=_UpstreamModels)
        except (httpx.HTTPError, msgspec.DecodeError):
            return []
        return [
            Model(id=entry.id, created=entry.created or 0, owned_by=entry.owned_by or "upstream")
            for entry in listed.data
            if entry.id
        ]

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta | StreamEnd]:
        body = await offload.off_loop(
            lambda: translate.to_chat_body(request, self._route), request.context
        )
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        with_logprobs = logprobs.wanted(request.params.include)
        finish_reason: str | None = None
        usage: object = None
        service_tier: str | None = None
        # How far the stream got, so a failure says whether it ever started.
        progress = _NOT_CONNECTED
        try:
            async with self._endpoint.event_source(self._url, encoder.encode(body)) as source:
                answer_cap.cap(source.response, self._endpoint.max_answer_bytes)
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise self._status_error(source.response)
                progress = _ANSWERED
                async for event in source.aiter_sse():
                    progress = _STREAMING
                    if event.data == "[DONE]":
                        # Read on to the end of the body rather than break: a connection left
                        # mid-body is closed, and the next stream would open a new one.
                        continue
                    chunk = _decode_chunk(event.data)
                    found, finish = chunks.deltas(chunk, with_logprobs=with_logprobs)
                    for delta in found:
                        yield delta
                    finish_reason = finish or finish_reason
                    usage = chunk.get("usage") or usage
                    service_tier = chunk.get("service_tier") or service_tier
        except httpx.TimeoutException:
            raise UpstreamTimeout(
                f"no chunk within {self._route.timeout_seconds:g} seconds"
            ) from None
        except SSEError:
            raise UpstreamProtocolError(
                "the upstream did not answer with an event stream"
            ) from None
        except httpx.HTTPError as exc:
            if progress == _NOT_CONNECTED:
                raise self._cannot_reach(exc) from None
            if progress == _ANSWERED:
                raise UpstreamUnavailable(
                    f"the upstream closed the stream before sending any event "
                    f"({type(exc).__name__})"
                ) from None
            raise UpstreamUnavailable(f"the stream broke off ({type(exc).__name__})") from None
        if finish_reason is None:
            raise UpstreamProtocolError("the stream ended before the model finished")
        yield StreamEnd(finish_reason, translate.usage_from(usage), service_tier)

    def _cannot_reach(self, exc: httpx.HTTPError) -> UpstreamUnavailable:
        return UpstreamUnavailable(self._unreachable.format(kind=type(exc).__name__))

    def _status_error(self, answer: httpx.Response) -> UpstreamStatusError:
        status = answer.status_code
        return classify(status, f"HTTP {status}: {self._redact(upstream_message(answer))}")

    def _redact(self, text: str) -> str:
        return self._endpoint.redact(text)


class _UpstreamModel(msgspec.Struct):
    id: str
    created: int | None = None
    owned_by: str | None = None


class _UpstreamModels(msgspec.Struct):
    data: list[_UpstreamModel]


def _decode_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = msgspec.json.decode(data)
    except msgspec.DecodeError:
        raise UpstreamProtocolError("the upstream sent a chunk that is not JSON") from None
    if not isinstance(chunk, dict):
        raise UpstreamProtocolError("the upstream sent a chunk that is not a JSON object")
    return chunk
