"""How a run ends: the terminal values to store, made the same way by every kind of run.

Whatever happens upstream, a run ends with one of these (completed, incomplete, failed,
cancelled), so the service always has a final state to write.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.db.base import utcnow
from app.providers.base import GenerationResult, ProviderError
from app.secrets import registry as secret_registry
from app.wire.items import CALL_TYPES
from app.wire.responses import CreateResponseRequest, ResponseUsage


class Outcome(msgspec.Struct):
    """The terminal state of one run: the columns to write and the output items to insert."""

    status: str
    output: list[dict[str, Any]]
    values: dict[str, Any]
    failure: ProviderError | None = None


def failed_outcome(code: str, message: str) -> Outcome:
    return failed(code, message, None, [])


LEASE_LOST = (
    "The run of this response lost its lease (its heartbeat could not be written in time) "
    "and was stopped, so that it is never generated twice at once."
)


def lost() -> Outcome:
    """A run that learned it lost its lease: it stops; whatever the database holds stands
    (the settle that follows is refused unless the row is still this run's)."""
    return failed("server_error", LEASE_LOST, None, [])


def interrupted(output: list[dict[str, Any]]) -> Outcome:
    """A run cut short by shutdown: failed, with a message saying so and the partial output."""
    message = "The server shut down before the model finished."
    return failed("server_error", message, None, output)


def cancelled(output: list[dict[str, Any]]) -> Outcome:
    """A foreground stream whose client went away: OpenAI cancels such a generation.

    The partial output is kept, each unfinished item marked `incomplete`; usage is unknown.
    """
    for item in output:
        if item.get("status") == "in_progress":
            item["status"] = "incomplete"
    return Outcome("cancelled", output, {"status": "cancelled"})


def warmed_up() -> Outcome:
    """A WebSocket warm-up (`generate: false`): completed at once with no output and no
    tokens, because no model was called; its input is the context a next turn continues."""
    usage = msgspec.to_builtins(ResponseUsage(input_tokens=0, output_tokens=0, total_tokens=0))
    values = {"status": "completed", "usage": usage, "completed_at": utcnow()}
    return Outcome("completed", [], {**values, "incomplete_details": None})


def settled(result: GenerationResult, max_tool_calls: int | None) -> Outcome:
    output = _cap_tool_calls(result.output, max_tool_calls)
    values: dict[str, Any] = {
        "status": result.status,
        "usage": msgspec.to_builtins(result.usage),
        "completed_at": utcnow() if result.status == "completed" else None,
        "incomplete_details": (
            {"reason": result.incomplete_reason} if result.status == "incomplete" else None
        ),
    }
    if result.service_tier:
        values["service_tier"] = result.service_tier
    return Outcome(status=result.status, output=output, values=values)


def failed(
    code: str, message: str, failure: ProviderError | None, output: list[dict[str, Any]]
) -> Outcome:
    error = {"code": code, "message": secret_registry.process_scrubber().scrub(message)}
    return Outcome("failed", output, {"status": "failed", "error": error}, failure)


def tool_call_cap(params: CreateResponseRequest) -> int | None:
    """How many client tool calls one response may hold: one when `parallel_tool_calls` is
    false — many self-hosted upstreams ignore that flag and answer several calls anyway, and
    a client that turned it off is not written for more than one. `max_tool_calls` caps the
    calls of hosted (built-in) tools only, as OpenAI's reference has it (runs/hosted.py)."""
    return 1 if params.parallel_tool_calls is False else None


def _cap_tool_calls(output: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """Calls past the cap are dropped, as OpenAI ignores calls past `max_tool_calls`."""
    if limit is None:
        return output
    kept: list[dict[str, Any]] = []
    calls = 0
    for item in output:
        if item["type"] in CALL_TYPES:
            calls += 1
            if calls > limit:
                continue
        kept.append(item)
    return kept
