"""Redaction of a set of secrets from text: whole texts, JSON-like trees, and streams of deltas.

One Aho-Corasick automaton of every form's head (app/secrets/forms.py) finds where a secret
may start, in one pass over the text whatever the number of secrets (a regex alternation
tries every head at every position, and grew 18-fold slower at 24 secrets); only there is the
match grown, character by character, as far as the form goes. Overlapping matches (two secrets
sharing a stretch of text) are merged and redacted as one.

A stream is scrubbed as it goes (`StreamScrubber`): each delta is released at once except the
tail that could still be the start of a secret — a match that runs to the end of what arrived,
or four or more characters that begin one — which waits for the next delta (or `finish`). Up
to three such characters do go out: nearly any single character begins some form of some
secret, so holding those would delay nearly every delta. The scrubber remembers the last
characters it released, so a secret that goes on in the next delta is still found and redacted
from there: what a cut can let out is a secret's first three characters, never more. The
released pieces are what is relayed and stored: the deltas a client sees add up to the stored
text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ahocorasick

from app.secrets.forms import Form, forms_of, lowered

REDACTED = "[redacted]"
# A stream's tail is held back once this many characters of it (with those released before it)
# begin a secret; fewer go out.
HOLD_AFTER = 4
# Opaque state a provider must get back byte for byte (signatures, sealed blobs): never edited.
OPAQUE_FIELDS = frozenset({"encrypted_content"})


class Span:
    """A stretch of text to redact; `open` when it ran to the end of the text while its form
    went on, so more text could make it longer."""

    __slots__ = ("end", "open", "start")

    def __init__(self, start: int, end: int, open_: bool) -> None:
        self.start, self.end, self.open = start, end, open_


class Scrubber:
    """The secrets of one scope (the process's, or one run's with its tool credentials)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = frozenset(secret for secret in secrets if forms_of(secret))
        self._by_head: dict[str, list[Form]] = {}
        for secret in self.secrets:
            for form in forms_of(secret):
                self._by_head.setdefault(form.head, []).append(form)
        self._heads = _automaton(self._by_head)
        # The proper prefixes of heads a stream holds back while the rest of a secret may be
        # on its way (HOLD_AFTER characters or more).
        self._starts = frozenset(
            head[:n] for head in self._by_head for n in range(HOLD_AFTER, len(head))
        )
        self._leads = _automaton({head[:HOLD_AFTER] for head in self._by_head})
        self.longest_head = max((len(head) for head in self._by_head), default=0)

    def __bool__(self) -> bool:
        return self._heads is not None

    def scrub(self, text: str) -> str:
        if self._heads is None or not text:
            return text
        return _replaced(text, self.spans(text))

    def scrub_tree(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string scrubbed (keys, and opaque fields'
        values, stay as they are)."""
        if self._heads is None:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {
                key: item if key in OPAQUE_FIELDS else self.scrub_tree(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.scrub_tree(item) for item in value]
        return value

    def stream(self) -> StreamScrubber:
        return StreamScrubber(self)

    def spans(self, text: str) -> list[Span]:
        """Where secrets are in `text`, merged, in order."""
        return self.spans_of_lowered(lowered(text))

    def spans_of_lowered(self, low: str) -> list[Span]:
        if self._heads is None:
            return []
        hits = list(self._heads.iter(low))
        if not hits:
            return []
        spans: list[Span] = []
        for start, head in sorted((end - len(head) + 1, head) for end, head in hits):
            end, open_ = self._longest_at(low, start, head)
            last = spans[-1] if spans else None
            if last is not None and start < last.end:
                if end > last.end or (end == last.end and open_):
                    last.end, last.open = end, open_
            else:
                spans.append(Span(start, end, open_))
        return spans

    def _longest_at(self, low: str, start: int, head: str) -> tuple[int, bool]:
        """The end of the longest form with this head matching at `start`, and whether it
        could go on."""
        best, best_open = start, False
        for form in self._by_head[head]:
            end = start + form.minimum
            while end < len(low) and end - start < len(form.text):
                if low[end] != form.text[end - start]:
                    break
                end += 1
            open_ = end == len(low) and end - start < len(form.text)
            if end > best or (end == best and open_):
                best, best_open = end, open_
        return best, best_open

    def may_hold_secret(self, low: str) -> bool:
        """Whether the (lowered) text has four characters that begin some head anywhere: no
        match and no tail to hold can exist without them (heads are 8 characters or more)."""
        return self._leads is not None and next(self._leads.iter(low), None) is not None

    def held_from(self, low: str, after: int) -> int:
        """Where the tail of the (lowered) text that could start a secret begins (its length
        if none): the longest suffix, from `after` on, that is the start of some head."""
        if self._leads is None:
            return len(low)
        begin = max(after, len(low) - self.longest_head + 1, 0)
        starts: list[int] = sorted(end - HOLD_AFTER + 1 for end, _ in self._leads.iter(low, begin))
        for start in starts:  # rare: four characters that begin a secret
            if low[start:] in self._starts:
                return start
        return len(low)


class StreamScrubber:
    """One stream's filter: `feed` each delta, send what it returns, `finish` at the end."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._released = ""  # the last characters sent, as they were: where a secret may begin
        self._held = ""

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, delta: str) -> str:
        if not self._scrubber:
            return delta
        text = self._released + self._held + delta
        sent, low = len(self._released), lowered(text)
        if not self._held and not self._scrubber.may_hold_secret(low):
            self._released = text[-self._scrubber.longest_head :]
            return delta  # the common case: one pass of the automaton
        spans = self._unsent(low, sent)
        if spans and spans[-1].open:
            cut = spans.pop().start
        else:
            cut = max(sent, self._scrubber.held_from(low, spans[-1].end if spans else 0))
        self._held = text[cut:]
        self._released = text[max(0, cut - self._scrubber.longest_head) : cut]
        return _replaced(text[sent:cut], spans, sent)

    def finish(self) -> str:
        """What is still held, scrubbed: the stream ended, so a match stops where it is."""
        text, sent = self._released + self._held, len(self._released)
        self._released = self._held = ""
        if not text[sent:]:
            return ""
        return _replaced(text[sent:], self._unsent(lowered(text), sent), sent)

    def _unsent(self, low: str, sent: int) -> list[Span]:
        """The spans of the (lowered) text past its first `sent` characters, which are gone
        already."""
        spans = [span for span in self._scrubber.spans_of_lowered(low) if span.end > sent]
        for span in spans:
            span.start = max(span.start, sent)
        return spans


def _automaton(words: Iterable[str]) -> Any:
    """An Aho-Corasick automaton finding every word (each its own value), None for no words."""
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, word)
    if len(automaton) == 0:
        return None
    automaton.make_automaton()
    return automaton


def _replaced(text: str, spans: list[Span], offset: int = 0) -> str:
    """`text` with each span (positions `offset` further on) redacted."""
    if not spans:
        return text
    pieces, position = [], 0
    for span in spans:
        pieces.append(text[position : span.start - offset])
        pieces.append(REDACTED)
        position = span.end - offset
    pieces.append(text[position:])
    return "".join(pieces)
