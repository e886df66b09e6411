"""Fitting a context into a model's window: compaction items rendered, then truncation.

Pure functions over (item, token count) entries, called only from `assembly.py`, which is the
place a context is built. The counts come from the item store's cache where it has them for the
model's encoding, so a 10,000-item history costs a sum, not a tokenization.

`truncation: "auto"` drops whole items from the start of the history until the context fits:
never the instructions, never an item of the current input, never an `additional_tools` item
(the tools it adds stay callable). A function call and its outputs
go together (an output whose call was dropped is dropped too, so the model never sees an
orphan tool result), and a call whose output is in the current input is kept. When even that
leaves the context too big, the request is refused as `truncation: "disabled"` refuses any
over-long context: before any upstream call, with OpenAI's `context_length_exceeded`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from app.errors import InvalidRequest
from app.tokens.counting import REPLY_PRIMING, TokenCounter
from app.wire.items import CALL_TYPES, OUTPUT_TYPES

CONTEXT_LENGTH_EXCEEDED = (
    "Your input exceeds the context window of this model. Please adjust your input and try again."
)
# Messages a compaction keeps verbatim: what people and operators said, not what the model did.
_KEPT_ROLES = frozenset({"user", "system", "developer"})


class Entry(msgspec.Struct):
    """One context item with its token count; `current` items belong to the new input."""

    body: dict[str, Any]
    tokens: int
    current: bool = False


class Budget(msgspec.Struct, frozen=True):
    """What the window allows: `limit` is the window minus the output reserve (None: unknown)."""

    limit: int | None
    truncation: str  # "auto" | "disabled"
    fixed: int  # instructions, tool definitions and the reply's priming


def context_length_exceeded() -> InvalidRequest:
    return InvalidRequest(CONTEXT_LENGTH_EXCEEDED, param="input", code="context_length_exceeded")


def fixed_tokens(counter: TokenCounter, instructions: str | None, tools: Any) -> int:
    return REPLY_PRIMING + counter.instructions(instructions) + counter.tools(tools)


def total(entries: list[Entry], budget: Budget) -> int:
    return budget.fixed + sum(entry.tokens for entry in entries)


def render_compactions(
    entries: list[Entry], summary_message: Callable[[dict[str, Any]], Entry]
) -> list[Entry]:
    """Apply the latest compaction item: it replaces every earlier item except the messages of
    users, system and developer (and the developer's `additional_tools`), and its summary sits
    where the first replaced item was.

    This is the same for the turn that made the compaction and for every later one, and for a
    client that sends `/responses/compact`'s output back as input (user messages, then the
    compaction item): nothing is replaced there, so the summary follows the user messages.
    """
    latest = next(
        (index for index in range(len(entries) - 1, -1, -1) if _is_compaction(entries[index])),
        None,
    )
    if latest is None:
        return entries
    summary = summary_message(entries[latest].body)
    summary.current = entries[latest].current
    rendered: list[Entry] = []
    placed = False
    for entry in entries[:latest]:
        if _kept_by_compaction(entry.body):
            rendered.append(entry)
        elif not placed:
            rendered.append(summary)
            placed = True
    if not placed:
        rendered.append(summary)
    rendered.extend(entries[latest + 1 :])
    return rendered


def fit(entries: list[Entry], budget: Budget) -> list[Entry]:
    """The entries that fit the budget, per `budget.truncation`; refuses what cannot fit."""
    if budget.limit is None or total(entries, budget) <= budget.limit:
        return entries
    if budget.truncation != "auto":
        raise context_length_exceeded()
    return truncate(entries, budget)


def truncate(entries: list[Entry], budget: Budget) -> list[Entry]:
    """Drop history from the start until the context fits (module docstring)."""
    assert budget.limit is not None
    excess = total(entries, budget) - budget.limit
    answered_now = {
        entry.body.get("call_id") for entry in entries if entry.current and _is_output(entry)
    }
    dropped: set[int] = set()
    dropped_calls: set[str] = set()
    for index, entry in enumerate(entries):
        if excess <= 0 or entry.current:
            break
        if entry.body.get("type") == "additional_tools":
            continue  # tools the rest of the conversation may still call: never dropped
        call_id = entry.body.get("call_id")
        if _is_call(entry) and call_id in answered_now:
            continue  # its output is in the new input: dropping it would orphan that output
        dropped.add(index)
        excess -= entry.tokens
        if _is_call(entry):
            dropped_calls.add(str(call_id))
    for index, entry in enumerate(entries):
        if (
            index not in dropped
            and _is_output(entry)
            and entry.body.get("call_id") in dropped_calls
        ):
            dropped.add(index)  # never leave a tool result whose call is gone
            excess -= entry.tokens
    if excess > 0:
        raise context_length_exceeded()
    return [entry for index, entry in enumerate(entries) if index not in dropped]


def _is_compaction(entry: Entry) -> bool:
    return entry.body.get("type") == "compaction"


def _kept_by_compaction(body: dict[str, Any]) -> bool:
    if body.get("type") == "additional_tools":
        return True  # what the developer made available, as their messages are
    return body.get("type", "message") == "message" and body.get("role") in _KEPT_ROLES


def _is_call(entry: Entry) -> bool:
    return entry.body.get("type") in CALL_TYPES


def _is_output(entry: Entry) -> bool:
    return entry.body.get("type") in OUTPUT_TYPES
