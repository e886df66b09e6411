"""Token log probabilities: asked of the upstream only when the client included them.

chat-completions answers `choices[0].logprobs.content` as `{token, logprob, bytes,
top_logprobs: [{token, logprob, bytes}]}`; the Responses API keeps the same shape on an
`output_text` part, and a slimmer one (no `bytes`) on `output_text.delta`/`.done` events, as
OpenAI's spec has it (`LogProb` versus `ResponseLogProb`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

INCLUDE = "message.output_text.logprobs"


def wanted(include: Sequence[str] | None) -> bool:
    return INCLUDE in (include or ())


def request_fields(include: Sequence[str] | None, top_logprobs: int | None) -> dict[str, Any]:
    """What to add to the chat body: nothing unless the client asked for logprobs back, since
    an upstream spends work computing them."""
    if not wanted(include):
        return {}
    fields: dict[str, Any] = {"logprobs": True}
    if top_logprobs:
        fields["top_logprobs"] = top_logprobs
    return fields


def from_choice(choice: Any) -> list[dict[str, Any]]:
    """The content logprobs of a chat choice (or streamed choice), in the part shape; anything
    malformed is skipped rather than failing an answer the client has otherwise received."""
    block = choice.get("logprobs") if isinstance(choice, dict) else None
    content = block.get("content") if isinstance(block, dict) else None
    if not isinstance(content, list):
        return []
    return [entry for raw in content if (entry := _entry(raw, nested=True)) is not None]


def for_event(logprobs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Part-shaped logprobs in the event shape (no `bytes`)."""
    return [
        {
            "token": entry["token"],
            "logprob": entry["logprob"],
            "top_logprobs": [
                {"token": top["token"], "logprob": top["logprob"]} for top in entry["top_logprobs"]
            ],
        }
        for entry in logprobs
    ]


def _entry(raw: Any, *, nested: bool) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    token, logprob = raw.get("token"), raw.get("logprob")
    if not isinstance(token, str) or not isinstance(logprob, int | float):
        return None
    raw_bytes = raw.get("bytes")
    entry: dict[str, Any] = {
        "token": token,
        "logprob": float(logprob),
        "bytes": raw_bytes if isinstance(raw_bytes, list) else list(token.encode()),
    }
    if nested:
        tops = raw.get("top_logprobs")
        entry["top_logprobs"] = [
            top
            for item in (tops if isinstance(tops, list) else [])
            if (top := _entry(item, nested=False))
        ]
    return entry
