"""Citations of web search sources in an answer's text: `[n]` markers and literal URLs, their
indices exact and each annotation valid as OpenAI's `UrlCitationBody`."""

from __future__ import annotations

from typing import Any

from app.tools.citations import Source, citations_in
from tests.openapi import schema_errors

A = Source(1, "https://example.com/a", "Page A")
B = Source(2, "https://docs.python.org/3/", "Python docs")
C = Source(3, "https://example.com/a/b", "Page A/B")


def spans(text: str, notes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    for note in notes:
        assert schema_errors("UrlCitationBody", note) == []
        assert set(note) == {"type", "url", "title", "start_index", "end_index"}
    return [(text[note["start_index"] : note["end_index"]], note["url"]) for note in notes]


def test_markers_cite_their_sources() -> None:
    text = "Asyncio is cooperative [1]. Tasks are scheduled [2][3], not [9] or [x]."
    notes = citations_in(text, [A, B, C])
    assert spans(text, notes) == [("[1]", A.url), ("[2]", B.url), ("[3]", C.url)]
    assert notes[0] == {
        "type": "url_citation",
        "url": A.url,
        "title": "Page A",
        "start_index": 23,
        "end_index": 26,
    }


def test_literal_urls_cite_their_sources() -> None:
    text = (
        "Read https://example.com/a. Also (https://docs.python.org/3) and "
        "https://example.com/a/b, not https://example.com/a.html or https://example.com/ab."
    )
    notes = citations_in(text, [A, B, C])
    assert spans(text, notes) == [
        ("https://example.com/a", A.url),
        ("https://docs.python.org/3", B.url),  # its trailing slash dropped
        ("https://example.com/a/b", C.url),
    ]
    assert notes[0]["start_index"] == 5
    assert notes[0]["end_index"] == 26


def test_markers_and_urls_together_in_order() -> None:
    text = "[2] says so: https://example.com/a [1]"
    assert spans(text, citations_in(text, [A, B])) == [
        ("[2]", B.url),
        ("https://example.com/a", A.url),
        ("[1]", A.url),
    ]
