"""A foreground streamed run: lifecycle events around the run's events, as plain event dicts.

The transport (SSE or a WebSocket) only frames what this yields, so every transport
gets the same events, sequence numbers and settling.

The response row is written before the terminal event is sent, so the terminal event's
`response` is exactly what `GET /v1/responses/{id}` returns afterwards. When the client goes
away mid-stream, the generator is cancelled or closed: the upstream call is aborted with it and
the response is settled as `cancelled` (OpenAI cancels a foreground generation whose connection
closes), keeping the partial output, under a shield so the write itself is not cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

import anyio

from app.responses import convert
from app.runs import loop
from app.runs import outcome as outcomes
from app.runs.emitter import Emitter, Event

if TYPE_CHECKING:
    from app.context.compaction import Sealer
    from app.runs.started import Started

TERMINAL_EVENTS = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
}


class Settler(Protocol):
    """What the stream needs from the service: keep the lease alive, record the end."""

    @property
    def sealer(self) -> Sealer: ...

    def kept_alive(
        self, started: Started, on_lost: Callable[[], object] | None = None
    ) -> AbstractAsyncContextManager[None]: ...

    async def settle(self, started: Started, outcome: outcomes.Outcome) -> outcomes.Outcome: ...


def announced(emitter: Emitter, started: Started) -> list[Event]:
    """`response.created` and `response.in_progress`, which open every stream."""
    snapshot = convert.to_wire(started.row, [])
    return [
        emitter.event("response.created", response=snapshot),
        emitter.event("response.in_progress", response=snapshot),
    ]


async def events(started: Started, service: Settler) -> AsyncIterator[Event]:
    emitter, run = loop.stream_run(started, service.sealer)
    for event in announced(emitter, started):
        yield event
    run_events = run.events()
    outcome: outcomes.Outcome | None = None
    lost: list[bool] = []  # set when the lease is lost: the run stops at its next event
    try:
        async with service.kept_alive(started, on_lost=lambda: lost.append(True)):
            async for event in run_events:
                yield event
                if lost:
                    await run_events.aclose()
                    break
        outcome = outcomes.lost() if lost else run.outcome
        assert outcome is not None  # StreamRun.events() always ends with an outcome
        with anyio.CancelScope(shield=True):  # a disconnect now must not cut the write short
            outcome = await service.settle(started, outcome)
    except BaseException:  # cancelled, or closed at a yield: the client is gone
        if outcome is None:
            with anyio.CancelScope(shield=True):
                await run_events.aclose()
                await service.settle(started, outcomes.cancelled(emitter.output))
        raise
    yield terminal(emitter, started, outcome)


async def warm_up(started: Started, service: Settler) -> AsyncIterator[Event]:
    """A warm-up's stream (WebSocket mode's `generate: false`): announced, settled
    `completed` with no output — no model is called — and completed. A client gone before the
    settle leaves it `cancelled`, as any stream does."""
    emitter = Emitter(obfuscate=False)
    try:
        for event in announced(emitter, started):
            yield event
    except BaseException:
        with anyio.CancelScope(shield=True):
            await service.settle(started, outcomes.cancelled([]))
        raise
    with anyio.CancelScope(shield=True):
        outcome = await service.settle(started, outcomes.warmed_up())
    yield terminal(emitter, started, outcome)


def terminal(emitter: Emitter, started: Started, outcome: outcomes.Outcome) -> Event:
    final = convert.to_wire(started.row, outcome.output)
    return emitter.event(TERMINAL_EVENTS.get(outcome.status, "response.failed"), response=final)
