"""The content part kinds a streamed item is built of, and the events each streams as.

A message holds `output_text` and `refusal` parts, a reasoning item `reasoning_text` parts;
each opens empty, grows by its delta event and closes with its done event carrying the field
that grew.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class PartEvents(NamedTuple):
    delta: str
    done: str
    field: str  # the part's growing field, named so in both events


PART_EVENTS = {
    "output_text": PartEvents("response.output_text.delta", "response.output_text.done", "text"),
    "refusal": PartEvents("response.refusal.delta", "response.refusal.done", "refusal"),
    "reasoning_text": PartEvents(
        "response.reasoning_text.delta", "response.reasoning_text.done", "text"
    ),
}


def empty_part(part_type: str) -> dict[str, Any]:
    """A new part of `part_type`, with lists of its own (they grow in place)."""
    if part_type == "output_text":
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    if part_type == "refusal":
        return {"type": "refusal", "refusal": ""}
    return {"type": "reasoning_text", "text": ""}
