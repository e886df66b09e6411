"""The only caller of providers: runs one generation and settles its outcome as stored state.

Whatever happens upstream, the runner returns the terminal values to write (completed,
incomplete or failed), so the service always has a final state to store; an unexpected bug in
a provider is contained here as a failed response rather than a response stuck in_progress.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from app.db.base import utcnow
from app.providers.base import GenerationRequest, GenerationResult, Provider, ProviderError

log = logging.getLogger("rapport.runner")


class Outcome(msgspec.Struct):
    """The terminal state of one run: the columns to write and the output items to insert."""

    status: str
    output: list[dict[str, Any]]
    values: dict[str, Any]
    failure: ProviderError | None = None


async def run(provider: Provider, generation: GenerationRequest, response_id: str) -> Outcome:
    try:
        result = await provider.generate(generation)
    except ProviderError as exc:
        log.warning(
            "upstream failed",
            extra={"response_id": response_id, "error_kind": type(exc).__name__},
        )
        return _failed(exc.stored_code, exc.message, exc)
    except Exception as exc:  # noqa: BLE001  (a bug of ours must still end stored and terminal)
        log.error(
            "provider raised unexpectedly",
            extra={"response_id": response_id, "error_kind": type(exc).__name__},
        )
        return _failed("server_error", "The model failed to generate a response.", None)
    return _settled(result, generation.params.max_tool_calls)


def interrupted() -> Outcome:
    """The outcome of a run cut short by shutdown: failed, with a message saying so."""
    return _failed("server_error", "The server shut down before the model finished.", None)


def _settled(result: GenerationResult, max_tool_calls: int | None) -> Outcome:
    output = _cap_tool_calls(result.output, max_tool_calls)
    values: dict[str, Any] = {
        "status": result.status,
        "usage": msgspec.to_builtins(result.usage),
        "completed_at": utcnow() if result.status == "completed" else None,
        "incomplete_details": (
            {"reason": result.incomplete_reason} if result.status == "incomplete" else None
        ),
    }
    return Outcome(status=result.status, output=output, values=values)


def _failed(code: str, message: str, failure: ProviderError | None) -> Outcome:
    error = {"code": code, "message": message}
    return Outcome("failed", [], {"status": "failed", "error": error}, failure)


def _cap_tool_calls(output: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """`max_tool_calls`: calls past the cap are dropped, as OpenAI ignores further calls."""
    if limit is None:
        return output
    kept: list[dict[str, Any]] = []
    calls = 0
    for item in output:
        if item["type"] == "function_call":
            calls += 1
            if calls > limit:
                continue
        kept.append(item)
    return kept
