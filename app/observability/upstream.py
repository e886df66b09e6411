"""Every upstream model call, timed and counted by route, and traced when tracing is on.

The registry wraps each route's provider once; a call's time goes to the route's histogram
and to the request's access-log facts, and a failure is counted by its ProviderError class.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from app.observability import facts, metrics, tracing
from app.providers.base import (
    Delta,
    GenerationRequest,
    GenerationResult,
    Provider,
    ProviderError,
    StreamEnd,
)


class ObservedProvider:
    def __init__(self, route_name: str, inner: Provider) -> None:
        self.inner = inner
        self._route = route_name
        self._duration = metrics.UPSTREAM_DURATION.labels(route_name)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        started = time.perf_counter()
        with tracing.span("upstream.generate", {"rapport.route": self._route}):
            try:
                return await self.inner.generate(request)
            except ProviderError as exc:
                self._failed(exc)
                raise
            finally:
                self._took(time.perf_counter() - started)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta | StreamEnd]:
        started = time.perf_counter()
        with tracing.detached_span("upstream.stream", {"rapport.route": self._route}):
            try:
                async with aclosing(self.inner.stream(request)) as deltas:  # type: ignore[type-var]
                    async for delta in deltas:
                        yield delta
            except ProviderError as exc:
                self._failed(exc)
                raise
            finally:
                self._took(time.perf_counter() - started)

    def _took(self, seconds: float) -> None:
        self._duration.observe(seconds)
        facts.note_upstream(seconds)

    def _failed(self, exc: ProviderError) -> None:
        metrics.UPSTREAM_ERRORS.labels(self._route, type(exc).__name__).inc()
