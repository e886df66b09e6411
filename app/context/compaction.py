"""Compaction: the older part of a context summarized by the model into one `compaction` item.

The item is OpenAI's shape, `{id: "cmp_…", type: "compaction", encrypted_content}`, and its
content is opaque to clients: the summary sealed with the server's key (app/sealing.py), so a
client can hand it back (stateless use, or `/responses/compact`'s output as the next input) and
Rapport alone can read it. How it replaces the items before it is `window.render_compactions`.

Server-side compaction (`context_management: [{type: "compaction", compact_threshold}]`) runs
in the response's own run, before the model answers: the summary call is one more upstream call,
its item is the response's first output item (stored and listed like any item), its usage is
added to the response's, and the answer is generated on the reduced context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from app import ids
from app.context.window import Entry
from app.errors import ApiError, InvalidRequest
from app.providers.base import GenerationRequest, Provider, ProviderError
from app.tokens.counting import TokenCounter
from app.wire.responses import CreateResponseRequest, ResponseUsage

SUMMARY_INSTRUCTIONS = (
    "You are compacting a long conversation so that it can go on in a smaller context. "
    "Write a summary of the conversation so far that lets it continue without the original: "
    "the user's goals and constraints, facts and decisions established, the results of tool "
    "calls, and any work still open. Be concise and specific; do not address the user."
)
SUMMARY_REQUEST = "Summarize the conversation above, as instructed."
SUMMARY_HEADING = "Summary of the earlier conversation:\n"
SUMMARY_MAX_OUTPUT_TOKENS = 2048
_PAYLOAD_VERSION = 1


class Sealer(Protocol):
    def seal(self, payload: dict[str, Any]) -> str: ...

    def open(self, token: str) -> dict[str, Any]: ...


class Plan:
    """A compaction to run before the answer: what the summarizer reads, and how the answer's
    context is rebuilt around the new compaction item (raising `InvalidRequest` if it still
    does not fit)."""

    def __init__(
        self, summarizer_context: list[dict[str, Any]], rebuild: Callable[[Entry], list[Entry]]
    ) -> None:
        self.summarizer_context = summarizer_context
        self.rebuild = rebuild


class ContextRefused(ProviderError):
    """The context did not fit even after compaction: the response fails as a request error
    (stored as `invalid_prompt`, the Response's code for a request the model cannot take)."""

    stored_code = "invalid_prompt"

    def __init__(self, error: InvalidRequest) -> None:
        super().__init__(error.message)
        self.error = error

    def api_error(self, response_id: str | None) -> ApiError:
        return self.error


def new_item(sealer: Sealer, summary: str, model: str) -> dict[str, Any]:
    payload = {"v": _PAYLOAD_VERSION, "summary": summary, "model": model}
    return {
        "id": ids.new_id(ids.COMPACTION),
        "type": "compaction",
        "encrypted_content": sealer.seal(payload),
    }


def summary_reader(sealer: Sealer, counter: TokenCounter) -> Callable[[dict[str, Any]], Entry]:
    """Turns a compaction item into the message the model reads in its place."""

    def read(body: dict[str, Any]) -> Entry:
        message = summary_message(open_summary(sealer, body))
        return Entry(message, counter.item(message))

    return read


def summary_message(summary: str) -> dict[str, Any]:
    # The summary stands where the model's own turns stood, so it speaks as the assistant.
    text = SUMMARY_HEADING + summary
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def open_summary(sealer: Sealer, body: dict[str, Any]) -> str:
    try:
        payload = sealer.open(str(body.get("encrypted_content", "")))
        summary = payload["summary"]
    except Exception:  # noqa: BLE001  (any unreadable blob is the same client error)
        raise InvalidRequest(
            "The encrypted content of a compaction item could not be verified.",
            param="input",
            code="invalid_encrypted_content",
        ) from None
    if not isinstance(summary, str):
        raise InvalidRequest(
            "The encrypted content of a compaction item could not be verified.",
            param="input",
            code="invalid_encrypted_content",
        )
    return summary


async def summarize(
    provider: Provider,
    model: str,
    context: list[dict[str, Any]],
    instructions: str | None = None,
) -> tuple[str, ResponseUsage]:
    """One non-streaming upstream call; its ProviderErrors fail the response like any other.
    `instructions` (the conversation's own) are shown to the summarizer, not obeyed by it."""
    summarizer_instructions = SUMMARY_INSTRUCTIONS
    if instructions:
        summarizer_instructions += (
            f"\n\nThe conversation ran under these instructions:\n{instructions}"
        )
    request = GenerationRequest(
        model=model,
        instructions=summarizer_instructions,
        # Tool definitions are not conversation to summarize, nor tools for the summarizer.
        context=[
            *(item for item in context if item.get("type") != "additional_tools"),
            _user_message(SUMMARY_REQUEST),
        ],
        params=CreateResponseRequest(
            model=model, max_output_tokens=SUMMARY_MAX_OUTPUT_TOKENS, store=False
        ),
    )
    result = await provider.generate(request)
    texts = [
        part.get("text", "")
        for item in result.output
        if item.get("type") == "message"
        for part in item.get("content", [])
        if part.get("type") == "output_text"
    ]
    return "".join(texts).strip(), result.usage


async def compact(
    provider: Provider, generation: GenerationRequest, plan: Plan, sealer: Sealer
) -> tuple[dict[str, Any], ResponseUsage, GenerationRequest]:
    """Summarize, make the compaction item, and the generation on the reduced context."""
    summary, usage = await summarize(provider, generation.model, plan.summarizer_context)
    item = new_item(sealer, summary, generation.model)
    try:
        entries = plan.rebuild(Entry(item, 0))
    except InvalidRequest as exc:
        raise ContextRefused(exc) from None
    reduced = msgspec.structs.replace(generation, context=[entry.body for entry in entries])
    return item, usage, reduced


def added_usage(first: ResponseUsage, second: ResponseUsage) -> ResponseUsage:
    """Both calls' tokens: a compacting response pays for its summary too."""
    merged = msgspec.structs.replace(
        second,
        input_tokens=first.input_tokens + second.input_tokens,
        output_tokens=first.output_tokens + second.output_tokens,
        total_tokens=first.total_tokens + second.total_tokens,
    )
    merged.input_tokens_details = msgspec.structs.replace(
        second.input_tokens_details,
        cached_tokens=first.input_tokens_details.cached_tokens
        + second.input_tokens_details.cached_tokens,
    )
    merged.output_tokens_details = msgspec.structs.replace(
        second.output_tokens_details,
        reasoning_tokens=first.output_tokens_details.reasoning_tokens
        + second.output_tokens_details.reasoning_tokens,
    )
    return merged


def _user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
