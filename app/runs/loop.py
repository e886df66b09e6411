"""The only caller of providers: runs one generation and settles its outcome as stored state.

Whatever happens upstream, the runner ends with the terminal values to write (completed,
incomplete or failed), so the service always has a final state to store; an unexpected bug in
a provider is contained here as a failed response rather than a response stuck in_progress.

Unlike DESIGN.md §4.3, a non-streaming create does not drain a stream: `run` makes the
upstream's own non-streaming call, because one JSON answer costs far less CPU than a parsed
chunk per token. `StreamRun` serves streaming and background runs. Both build their items with
the same functions (`providers/translate.py`), and the tests hold both to the same shapes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

from app.context import compaction, sealed_reasoning
from app.providers.base import (
    GenerationRequest,
    GenerationResult,
    Provider,
    ProviderError,
    StreamEnd,
)
from app.providers.translate import INCOMPLETE_REASONS
from app.runs.emitter import Emitter, Event
from app.runs.outcome import Outcome, failed, settled, tool_call_cap
from app.wire.responses import ResponseUsage

log = logging.getLogger("rapport.runner")


async def run(
    provider: Provider,
    generation: GenerationRequest,
    response_id: str,
    plan: compaction.Plan | None = None,
    sealer: compaction.Sealer | None = None,
) -> Outcome:
    """One non-streaming generation, after the compaction `plan` asks for (if any)."""
    compacted: tuple[dict[str, Any], ResponseUsage] | None = None
    try:
        if plan is not None and sealer is not None:
            item, usage, generation = await compaction.compact(provider, generation, plan, sealer)
            compacted = item, usage
        result = await provider.generate(generation)
    except ProviderError as exc:
        _log_failure(response_id, exc)
        return failed(exc.stored_code, exc.message, exc, [])
    except Exception as exc:  # noqa: BLE001  (a bug of ours must still end stored and terminal)
        _log_failure(response_id, exc)
        return failed("server_error", "The model failed to generate a response.", None, [])
    if sealer is not None and sealed_reasoning.wanted(generation.params.include):
        for item in result.output:
            sealed_reasoning.seal(sealer, item)
    if compacted is not None:
        result.output = [compacted[0], *result.output]
        result.usage = compaction.added_usage(compacted[1], result.usage)
    return settled(result, tool_call_cap(generation.params))


class StreamRun:
    """One streamed generation: iterate `events()` for item events, then read `outcome`."""

    def __init__(
        self,
        provider: Provider,
        generation: GenerationRequest,
        response_id: str,
        emitter: Emitter,
        plan: compaction.Plan | None = None,
        sealer: compaction.Sealer | None = None,
    ) -> None:
        self._provider = provider
        self._generation = generation
        self._response_id = response_id
        self._emitter = emitter
        self._plan = plan
        self._sealer = sealer
        self._usage_before: ResponseUsage | None = None  # the compaction's summary call
        self.outcome: Outcome | None = None

    async def _compact_first(self) -> AsyncGenerator[Event, None]:
        """The compaction item streams whole, as output item 0, before the answer starts."""
        if self._plan is None or self._sealer is None:
            return
        item, usage, self._generation = await compaction.compact(
            self._provider, self._generation, self._plan, self._sealer
        )
        self._usage_before = usage
        for event in self._emitter.whole_item(item):
            yield event

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
        end: StreamEnd | None = None
        try:
            async for event in self._compact_first():
                yield event
            async for delta in self._provider.stream(self._generation):
                if isinstance(delta, StreamEnd):
                    end = delta
                else:
                    for event in self._emitter.on_delta(delta):
                        self._seal_if_done(event)
                        yield event
        except ProviderError as exc:
            _log_failure(self._response_id, exc)
            for event in self._emitter.close("incomplete"):
                yield event
            self.outcome = failed(exc.stored_code, exc.message, exc, self._emitter.output)
            return
        except Exception as exc:  # noqa: BLE001  (as in run(): contained, stored, terminal)
            _log_failure(self._response_id, exc)
            for event in self._emitter.close("incomplete"):
                yield event
            message = "The model failed to generate a response."
            self.outcome = failed("server_error", message, None, self._emitter.output)
            return
        assert end is not None  # providers end every successful stream with a StreamEnd
        reason = INCOMPLETE_REASONS.get(end.finish_reason or "")
        for event in self._emitter.close("incomplete" if reason else "completed"):
            self._seal_if_done(event)
            yield event
        usage = end.usage
        if self._usage_before is not None:
            usage = compaction.added_usage(self._usage_before, usage)
        result = GenerationResult(
            output=self._emitter.output,
            usage=usage,
            status="incomplete" if reason else "completed",
            incomplete_reason=reason,  # type: ignore[arg-type]
            service_tier=end.service_tier,
        )
        self.outcome = settled(result, None)  # the emitter already applied max_tool_calls


def _log_failure(response_id: str, exc: Exception) -> None:
    level = logging.WARNING if isinstance(exc, ProviderError) else logging.ERROR
    log.log(
        level,
        "generation failed",
        extra={"response_id": response_id, "error_kind": type(exc).__name__},
    )
