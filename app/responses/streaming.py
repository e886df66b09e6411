"""The body of a foreground `stream: true` create: lifecycle events around the run's events.

The response row is written before the terminal event is sent, so the terminal event's
`response` is exactly what `GET /v1/responses/{id}` returns afterwards. When the client goes
away mid-stream, the generator is cancelled or closed: the upstream call is aborted with it and
the response is settled as `cancelled` (OpenAI cancels a foreground generation whose connection
closes), keeping the partial output, under a shield so the write itself is not cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

import anyio

from app.providers.tool_mapping import custom_names
from app.responses import convert, runner
from app.responses.emitter import Emitter
from app.responses.sse import frame

if TYPE_CHECKING:
    from app.responses.compaction import Sealer
    from app.responses.service import Started

TERMINAL_EVENTS = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
}


class Settler(Protocol):
    """What the stream needs from the service: keep the lease alive, record the end."""

    @property
    def sealer(self) -> Sealer: ...

    def kept_alive(self, started: Started) -> AbstractAsyncContextManager[None]: ...

    async def settle(self, started: Started, outcome: runner.Outcome) -> None: ...


async def sse_body(started: Started, service: Settler) -> AsyncIterator[bytes]:
    params = started.generation.params
    options = params.stream_options
    emitter = Emitter(
        obfuscate=options is None or options.include_obfuscation is not False,
        max_tool_calls=runner.tool_call_cap(params),
        custom_tools=custom_names(started.generation.tools),
    )
    run = runner.StreamRun(
        started.provider,
        started.generation,
        started.row.id,
        emitter,
        started.plan,
        service.sealer,
    )
    snapshot = convert.to_wire(started.row, [])
    yield frame(emitter.event("response.created", response=snapshot))
    yield frame(emitter.event("response.in_progress", response=snapshot))
    events = run.events()
    outcome: runner.Outcome | None = None
    try:
        async with service.kept_alive(started):
            async for event in events:
                yield frame(event)
        outcome = run.outcome
        assert outcome is not None  # StreamRun.events() always ends with an outcome
        with anyio.CancelScope(shield=True):  # a disconnect now must not cut the write short
            await service.settle(started, outcome)
    except BaseException:  # cancelled, or closed at a yield: the client is gone
        if outcome is None:
            with anyio.CancelScope(shield=True):
                await events.aclose()
                await service.settle(started, runner.cancelled(emitter.output))
        raise
    final = convert.to_wire(started.row, outcome.output)
    yield frame(emitter.event(TERMINAL_EVENTS[outcome.status], response=final))
