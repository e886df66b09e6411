"""The only caller of providers: the run loop of one response, settled as stored state.

A run is a loop: model call → the hosted tools it called, run by Rapport → model call again,
until the model answers, returns a call for the client to run, waits for an approval, or has
spent `max_tool_calls` (app/runs/hosted.py holds the tool side). Whatever happens upstream, the
loop ends with the terminal values to write (completed, incomplete or failed), so the service
always has a final state to store; an unexpected bug in a provider or a tool is contained here
as a failed response rather than a response stuck in_progress. Usage adds up every model call.

Unlike DESIGN.md §4.3, a non-streaming create does not drain a stream: `run` makes the
upstream's own non-streaming call, because one JSON answer costs far less CPU than a parsed
chunk per token. `StreamRun` serves streaming and background runs. Both build their items with
the same functions (`providers/translate.py`), and the tests hold both to the same shapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING

from app.context import compaction, sealed_reasoning
from app.providers.base import (
    Delta,
    GenerationRequest,
    GenerationResult,
    Provider,
    ProviderError,
    StreamEnd,
)
from app.providers.catalog import catalog_for
from app.providers.translate import INCOMPLETE_REASONS
from app.runs.emitter import Emitter, Event
from app.runs.hosted import HostedTurns, has_client_calls
from app.runs.outcome import Outcome, failed, settled, tool_call_cap
from app.runs.scrubbed import DeltaFilter
from app.secrets import registry as secret_registry
from app.tools.base import EventSink
from app.tools.toolset import Toolset

if TYPE_CHECKING:
    from app.runs.started import Started
from app.wire.responses import ResponseUsage

log = logging.getLogger("rapport.runner")
FAILED_MESSAGE = "The model failed to generate a response."


async def run(
    provider: Provider,
    generation: GenerationRequest,
    response_id: str,
    plan: compaction.Plan | None = None,
    sealer: compaction.Sealer | None = None,
    tools: Toolset | None = None,
    input_count: int = 0,
) -> Outcome:
    """A whole non-streaming run, after the compaction `plan` asks for (if any)."""
    toolset = tools or Toolset()
    with secret_registry.held(toolset.credentials()):
        return await _run(provider, generation, response_id, plan, sealer, toolset, input_count)


async def _run(
    provider: Provider,
    generation: GenerationRequest,
    response_id: str,
    plan: compaction.Plan | None,
    sealer: compaction.Sealer | None,
    toolset: Toolset,
    input_count: int,
) -> Outcome:
    scrubber = secret_registry.run_scrubber(toolset.credentials())
    collected = Emitter(obfuscate=False)  # holds the output; its events are not sent
    usage: ResponseUsage | None = None
    result: GenerationResult | None = None
    try:
        if plan is not None and sealer is not None:
            item, usage, generation = await compaction.compact(provider, generation, plan, sealer)
            collected.whole_item(item)
        turns = HostedTurns(toolset, generation, collected, input_count, scrubber)
        await turns.start(None)
        while True:
            result = await provider.generate(turns.next_generation())
            result.output = scrubber.scrub_tree(result.output)
            usage = _added(usage, result.usage)
            if sealer is not None and sealed_reasoning.wanted(generation.params.include):
                for produced in result.output:
                    sealed_reasoning.seal(sealer, produced)
            kept, calls = turns.split(result.output)
            collected.output.extend(kept)
            if calls and result.status == "completed":
                await turns.run_calls(calls, kept, None)
                if not turns.awaiting_approval and not has_client_calls(kept):
                    continue
            turns.annotate(kept)
            break
    except ProviderError as exc:
        _log_failure(response_id, exc)
        return failed(exc.stored_code, exc.message, exc, collected.output)
    except Exception as exc:  # noqa: BLE001  (a bug of ours must still end stored and terminal)
        _log_failure(response_id, exc)
        return failed("server_error", FAILED_MESSAGE, None, collected.output)
    finally:
        toolset.close_soon()
    assert result is not None  # the loop ran at least one model call
    result.output, result.usage = collected.output, usage or result.usage
    return settled(result, tool_call_cap(generation.params))


class StreamRun:
    """One streamed run: iterate `events()` for item events, then read `outcome`."""

    def __init__(
        self,
        provider: Provider,
        generation: GenerationRequest,
        response_id: str,
        emitter: Emitter,
        plan: compaction.Plan | None = None,
        sealer: compaction.Sealer | None = None,
        tools: Toolset | None = None,
        input_count: int = 0,
    ) -> None:
        self._provider = provider
        self._generation = generation
        self._response_id = response_id
        self._emitter = emitter
        self._plan = plan
        self._sealer = sealer
        self._toolset = tools or Toolset()
        self._input_count = input_count
        self._usage: ResponseUsage | None = None  # every model call's, added up
        self._scrubber = secret_registry.run_scrubber(self._toolset.credentials())
        self.outcome: Outcome | None = None

    async def _compact_first(self) -> AsyncGenerator[Event, None]:
        """The compaction item streams whole, as output item 0, before the answer starts."""
        if self._plan is None or self._sealer is None:
            return
        item, usage, self._generation = await compaction.compact(
            self._provider, self._generation, self._plan, self._sealer
        )
        self._usage = usage
        for event in self._emitter.whole_item(item):
            yield event

    def _relayed(self, delta: Delta) -> list[Event]:
        events = self._emitter.on_delta(delta)
        for event in events:
            self._seal_if_done(event)
        return events

    def _seal_if_done(self, event: Event) -> None:
        """A finished reasoning item gets its sealed copy before its done event goes out (the
        event holds the same item the output keeps)."""
        if (
            event["type"] == "response.output_item.done"
            and self._sealer is not None
            and sealed_reasoning.wanted(self._generation.params.include)
        ):
            sealed_reasoning.seal(self._sealer, event["item"])

    async def events(self) -> AsyncGenerator[Event, None]:
        credentials = self._toolset.credentials()
        secret_registry.hold(credentials)  # for the logs, while the run lasts
        try:
            async for event in self._turns():
                yield event
        except ProviderError as exc:
            _log_failure(self._response_id, exc)
            for event in self._emitter.close("incomplete"):
                yield event
            self.outcome = failed(exc.stored_code, exc.message, exc, self._emitter.output)
        except Exception as exc:  # noqa: BLE001  (as in run(): contained, stored, terminal)
            _log_failure(self._response_id, exc)
            for event in self._emitter.close("incomplete"):
                yield event
            self.outcome = failed("server_error", FAILED_MESSAGE, None, self._emitter.output)
        finally:
            secret_registry.release(credentials)
            self._toolset.close_soon()

    async def _turns(self) -> AsyncGenerator[Event, None]:
        async for event in self._compact_first():
            yield event
        turns = HostedTurns(
            self._toolset, self._generation, self._emitter, self._input_count, self._scrubber
        )
        async for event in _live(turns.start):
            yield event
        while True:
            first = len(self._emitter.output)
            end: StreamEnd | None = None
            deltas = DeltaFilter(self._scrubber)  # inline, not a generator: no hop per delta
            try:
                async for delta in self._provider.stream(turns.next_generation()):
                    for piece in deltas.on(delta):
                        if isinstance(piece, StreamEnd):
                            end = piece
                            continue
                        for event in self._relayed(piece):
                            yield event
            except ProviderError:
                for piece in deltas.flush():  # what was held joins the partial output
                    for event in self._relayed(piece):
                        yield event
                raise
            assert end is not None  # providers end every successful stream with a StreamEnd
            self._usage = _added(self._usage, end.usage)
            reason = INCOMPLETE_REASONS.get(end.finish_reason or "")
            calls = self._emitter.take_hosted_calls()
            if calls and reason is None:
                for event in self._emitter.close("completed"):
                    self._seal_if_done(event)
                    yield event
                turn = self._emitter.output[first:]

                async def run_calls(sink: EventSink) -> None:
                    await turns.run_calls(calls, turn, sink)  # noqa: B023  (awaited at once)

                async for event in _live(run_calls):
                    yield event
                if not turns.awaiting_approval and not has_client_calls(turn):
                    continue
            elif turns.toolset:
                citations = turns.toolset.annotate(self._emitter.open_text())
                for event in self._emitter.annotate_open_text(citations):
                    yield event
            for event in self._emitter.close("incomplete" if reason else "completed"):
                self._seal_if_done(event)
                yield event
            self._settle(end, reason)
            return

    def _settle(self, end: StreamEnd, reason: str | None) -> None:
        result = GenerationResult(
            output=self._emitter.output,
            usage=self._usage or end.usage,
            status="incomplete" if reason else "completed",
            incomplete_reason=reason,  # type: ignore[arg-type]
            service_tier=end.service_tier,
        )
        self.outcome = settled(result, None)  # the emitter already applied max_tool_calls


def stream_run(
    started: Started, sealer: compaction.Sealer, first_sequence: int = 0
) -> tuple[Emitter, StreamRun]:
    """The emitter and streamed run of a started response, made alike for the foreground
    stream, the WebSocket and the background worker (which starts after the announcement)."""
    generation = started.generation
    options = generation.params.stream_options
    emitter = Emitter(
        obfuscate=options is None or options.include_obfuscation is not False,
        max_tool_calls=tool_call_cap(generation.params),
        tools=catalog_for(generation.tools, generation.context),
        first_sequence=first_sequence,
    )
    run = StreamRun(
        started.provider,
        generation,
        started.row.id,
        emitter,
        started.plan,
        sealer,
        started.tools,
        len(started.input_ids),
    )
    return emitter, run


async def _live(work: Callable[[EventSink], Awaitable[None]]) -> AsyncGenerator[Event, None]:
    """Run `work` in a task of its own and yield the events it makes as they come, so a
    client sees a hosted call start while it runs; closing the generator cancels the work."""
    queue: asyncio.Queue[Event] = asyncio.Queue()
    task = asyncio.ensure_future(work(queue.put_nowait))
    try:
        while True:
            if queue.empty():
                if task.done():
                    break
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                yield getter.result()
            else:
                yield queue.get_nowait()
        task.result()  # a failure of the work is the run's failure
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _added(total: ResponseUsage | None, usage: ResponseUsage) -> ResponseUsage:
    return usage if total is None else compaction.added_usage(total, usage)


def _log_failure(response_id: str, exc: Exception) -> None:
    level = logging.WARNING if isinstance(exc, ProviderError) else logging.ERROR
    log.log(
        level,
        "generation failed",
        extra={"response_id": response_id, "error_kind": type(exc).__name__},
    )
