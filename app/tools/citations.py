"""Where an answer cites a web search's sources: OpenAI's `url_citation` annotations.

The model is given numbered results and told to cite them as `[1]`, `[2]`; models also paste
a source's URL. Both count: a `[n]` marker whose number names a source of this run, and a
source's URL written out in full (or without its trailing slash, which models drop). Indices
are offsets into the text, end exclusive, so `text[start_index:end_index]` is the citing span
(the marker or the URL), as in OpenAI's answers. A number that names no source is left alone:
the model may have meant something else by it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

_MARKER = re.compile(r"\[(\d{1,4})\]")
# Characters that continue a URL: a source URL followed by one of them is a longer URL.
_URL_GOES_ON = frozenset("/-_~%?#=&+@")
# Punctuation that ends a sentence after a URL, unless more of the URL follows it (".html").
_MAYBE_END = frozenset(".,;:!)'\"]")


class Source(msgspec.Struct, frozen=True):
    number: int
    url: str
    title: str


def citations_in(text: str, sources: Iterable[Source]) -> list[dict[str, Any]]:
    """The `url_citation`s of `text`, in the order they appear."""
    by_number = {source.number: source for source in sources}
    if not by_number or not text:
        return []
    found: list[tuple[int, int, Source]] = []
    for match in _MARKER.finditer(text):
        source = by_number.get(int(match.group(1)))
        if source is not None:
            found.append((match.start(), match.end(), source))
    for source in by_number.values():
        found.extend((start, end, source) for start, end in _url_spans(text, source.url))
    found.sort(key=lambda span: (span[0], span[1]))
    return [
        {
            "type": "url_citation",
            "url": source.url,
            "title": source.title,
            "start_index": start,
            "end_index": end,
        }
        for start, end, source in found
    ]


def _url_spans(text: str, url: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    forms = [url, url.rstrip("/")] if url.endswith("/") and url.rstrip("/") else [url]
    for form in forms:
        start = text.find(form)
        while start != -1:
            end = start + len(form)
            if _ends_there(text, end):
                spans.append((start, end))
            start = text.find(form, end)
    return spans


def _ends_there(text: str, end: int) -> bool:
    """True when the URL in the text stops at `end` rather than going on."""
    if end == len(text):
        return True
    char = text[end]
    if char.isalnum() or char in _URL_GOES_ON:
        return False
    if char in _MAYBE_END:
        following = text[end + 1 : end + 2]
        return not (following.isalnum() or (following and following in _URL_GOES_ON))
    return True
