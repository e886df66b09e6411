"""A total deadline on every upstream call, whole or streamed.

httpx's timeout bounds each read, so an upstream that sends a byte every half second holds a
run — and the process's shutdown — for ever; this bounds the whole call. A streamed call's
deadline is checked while it waits for the next delta, never while the caller handles one. At
the deadline the upstream call is abandoned (its connection closed) and the run fails with
UpstreamTimeout, stored as the response's error. The same wait is where a shutting-down server
interrupts the calls its clients wait on (draining.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

from app.providers import draining
from app.providers.base import (
    Delta,
    GenerationRequest,
    GenerationResult,
    Provider,
    ProviderError,
    ServerShuttingDown,
    StreamEnd,
    UpstreamTimeout,
)


class DeadlinedProvider:
    def __init__(self, inner: Provider, seconds: float) -> None:
        self.inner = inner
        self._seconds = seconds

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        try:
            async with asyncio.timeout(self._seconds) as timeout:
                with draining.interruptible(timeout):
                    return await self.inner.generate(request)
        except TimeoutError:
            raise self._expired() from None

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta | StreamEnd]:
        deadline = asyncio.get_running_loop().time() + self._seconds
        async with aclosing(self.inner.stream(request)) as deltas:  # type: ignore[type-var]
            while True:
                try:
                    async with asyncio.timeout_at(deadline) as timeout:
                        with draining.interruptible(timeout):
                            delta = await anext(deltas)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise self._expired() from None
                yield delta

    def _expired(self) -> ProviderError:
        if draining.is_draining():
            return ServerShuttingDown(
                "the server shut down before the answer ended; send the request again"
            )
        return UpstreamTimeout(
            f"the answer did not end within {self._seconds:g} seconds, the most one upstream "
            "call may take (RAPPORT_UPSTREAM_DEADLINE, or the route's deadline_seconds)"
        )
