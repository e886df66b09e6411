"""A provider's delta stream with every secret taken out, before the emitter sees it.

The run loop calls the filter inline for each delta (app/runs/loop.py) rather than through a
generator around the provider's stream: one generator hop per delta costs more than the
scrubbing itself.

Each kind of text (the answer, a refusal, reasoning, each tool call's arguments) runs through a
streaming scrubber of its own (app/secrets/scrubber.py). What one holds back — a tail that may
be the start of a secret — is released as soon as the next delta shows it is not, and flushed
when the stream moves on to another kind of text, to a whole item, to its end, or fails. So
the emitter, which relays and stores exactly what it is given, never holds a secret, and the
deltas a client sees add up to the stored text.
"""

from __future__ import annotations

from typing import Any

from app.providers.base import (
    Delta,
    ForeignItem,
    ReasoningDelta,
    RefusalDelta,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
)
from app.secrets.scrubber import Scrubber, StreamScrubber

TextPiece = TextDelta | RefusalDelta | ReasoningDelta | ToolCallDelta
_TEXT_PIECES = (TextDelta, RefusalDelta, ReasoningDelta, ToolCallDelta)  # for isinstance


class DeltaFilter:
    """One model stream's filter: each delta goes `on`, what it returns goes to the emitter;
    `flush` when the stream fails (its end flushes by itself)."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._key: tuple[str, int] | None = None
        self._stream: StreamScrubber = scrubber.stream()
        self._logprobs: list[dict[str, Any]] = []  # of text still held back

    def on(self, delta: Delta | StreamEnd) -> list[Delta | StreamEnd]:
        if not self._scrubber:
            return [delta]
        out: list[Delta | StreamEnd]
        if not isinstance(delta, _TEXT_PIECES):
            out = [*self.flush()]
            if isinstance(delta, ForeignItem):
                delta = ForeignItem(self._scrubber.scrub_tree(delta.item))
            return [*out, delta]
        key = _key_of(delta)
        out = [*self.flush()] if key != self._key else []
        self._key = key
        text = _text_of(delta)
        released = self._stream.feed(text)
        if released == text and not self._logprobs and not getattr(delta, "logprobs", ()):
            return [*out, delta]  # the common case: nothing held, nothing redacted
        piece = self._piece(delta, released)
        return [*out, piece] if piece is not None else out

    def flush(self) -> list[Delta]:
        """The held tail of the current text, as one last delta of its kind."""
        key, self._key = self._key, None
        rest = self._stream.finish()
        if key is None or not rest:
            return []
        kind, index = key
        if kind == "tool":
            return [ToolCallDelta(index=index, call_id=None, name=None, arguments=rest)]
        logprobs, self._logprobs = tuple(self._logprobs), []
        return [_TEXT_KINDS[kind](rest, logprobs) if kind == "text" else _TEXT_KINDS[kind](rest)]

    def _piece(self, delta: TextPiece, released: str) -> Delta | None:
        if isinstance(delta, ToolCallDelta):
            if not released and delta.call_id is None and delta.name is None:
                return None
            return ToolCallDelta(delta.index, delta.call_id, delta.name, released)
        if isinstance(delta, TextDelta):
            if delta.logprobs:
                self._logprobs.extend(self._scrubber.scrub_tree(list(delta.logprobs)))
            if not released:
                return None
            logprobs, self._logprobs = tuple(self._logprobs), []
            return TextDelta(released, logprobs)
        return type(delta)(released) if released else None


_TEXT_KINDS: dict[str, Any] = {
    "text": TextDelta,
    "refusal": RefusalDelta,
    "reasoning": ReasoningDelta,
}


_TEXT_KEY, _REFUSAL_KEY, _REASONING_KEY = ("text", 0), ("refusal", 0), ("reasoning", 0)


def _key_of(delta: TextPiece) -> tuple[str, int]:
    kind = type(delta)
    if kind is TextDelta:
        return _TEXT_KEY
    if kind is ToolCallDelta:
        return ("tool", delta.index)  # type: ignore[union-attr]
    return _REFUSAL_KEY if kind is RefusalDelta else _REASONING_KEY


def _text_of(delta: TextPiece) -> str:
    return delta.arguments if isinstance(delta, ToolCallDelta) else delta.text
