"""The run's delta filter: each kind of text scrubbed as a stream of its own, held tails
flushed in order, tool calls still opened by their first piece."""

from __future__ import annotations

import pytest

from app.providers.base import Delta, ReasoningEnd, StreamEnd, TextDelta, ToolCallDelta
from app.runs.scrubbed import DeltaFilter
from app.secrets.scrubber import REDACTED, Scrubber
from app.wire.responses import ResponseUsage

KEY = "sk-proj-Zq8Xv2LmT4pW9sKd7YhR3nBc6FgJ1uEa"
END = StreamEnd("stop", ResponseUsage(input_tokens=0, output_tokens=0, total_tokens=0))


def filtered(deltas: list[Delta | StreamEnd], fail: bool = False) -> list[object]:
    """What the run loop hands the emitter: each delta's pieces, then, when the stream
    fails after the last delta, what the filter still held."""
    deltas_filter = DeltaFilter(Scrubber([KEY]))
    out: list[object] = []
    for delta in deltas:
        out.extend(deltas_filter.on(delta))
    if fail:
        out.extend([*deltas_filter.flush(), "failed"])
    return out


def test_a_key_split_over_text_deltas_is_redacted_and_the_rest_flows() -> None:
    out = filtered([TextDelta("here: "), TextDelta(KEY[:20]), TextDelta(KEY[20:] + " ok"), END])
    assert out == [TextDelta("here: "), TextDelta(f"{REDACTED} ok"), END]


def test_a_tail_held_back_is_flushed_before_the_next_kind_of_delta() -> None:
    call = ToolCallDelta(0, "call_1", "lookup", '{"q": "')
    out = filtered(
        [
            TextDelta("see sk-proj"),
            call,
            ToolCallDelta(0, None, None, KEY[:9]),
            ToolCallDelta(0, None, None, KEY[9:] + '"}'),
            ReasoningEnd(None),
            END,
        ]
    )
    assert out == [
        TextDelta("see "),
        TextDelta("sk-proj"),  # held while it could be the key, released before the call
        call,
        ToolCallDelta(0, None, None, f'{REDACTED}"}}'),
        ReasoningEnd(None),
        END,
    ]


def test_a_tool_call_opened_by_a_held_piece_still_opens() -> None:
    out = filtered([ToolCallDelta(0, "call_1", "lookup", KEY[:14]), END])
    assert out == [
        ToolCallDelta(0, "call_1", "lookup", ""),
        ToolCallDelta(0, None, None, REDACTED),
        END,
    ]


def test_a_failing_stream_keeps_what_was_held() -> None:
    out = filtered([TextDelta("almost sk-proj")], fail=True)
    assert out == [TextDelta("almost "), TextDelta("sk-proj"), "failed"]


@pytest.mark.parametrize("cut", range(1, len(KEY)))
def test_text_deltas_add_up_to_the_scrubbed_text(cut: int) -> None:
    text = f"a {KEY} b"
    pieces = [text[: cut + 2], text[cut + 2 :]]
    out = filtered([TextDelta(piece) for piece in pieces] + [END])
    joined = "".join(d.text for d in out if isinstance(d, TextDelta))
    assert joined.endswith(f"{REDACTED} b")
    assert KEY[:12] not in joined
