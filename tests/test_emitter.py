"""Pure units of streaming: `chunks.deltas` (chunk → deltas) and `Emitter` (deltas → events)."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers.base import (
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    UpstreamProtocolError,
)
from app.providers.chunks import deltas
from app.runs.emitter import Emitter, Event


def run(emitter: Emitter, *pieces: Any, status: str = "completed") -> list[Event]:
    events = [event for piece in pieces for event in emitter.on_delta(piece)]
    return events + emitter.close(status)


def kinds(events: list[Event]) -> list[str]:
    return [event["type"].removeprefix("response.") for event in events]


def call(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> Any:
    return ToolCallDelta(index=index, call_id=call_id, name=name, arguments=arguments)


def test_text_events_and_output() -> None:
    emitter = Emitter(obfuscate=False)
    first = emitter.event("response.created")
    events = run(emitter, TextDelta("Hel"), TextDelta("lo"))
    assert first["sequence_number"] == 0
    assert [event["sequence_number"] for event in events] == list(range(1, 8))
    assert kinds(events) == [
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
    ]
    [message] = emitter.output
    assert message["status"] == "completed"
    assert message["content"] == [
        {"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello"}
    ]
    added = events[0]["item"]
    assert added == {**message, "status": "in_progress", "content": []}
    assert events[1]["part"]["text"] == ""  # a snapshot, not the live part
    assert events[4]["text"] == "Hello"
    assert events[6]["item"] == message
    for event in events[1:6]:
        assert (event["item_id"], event["output_index"], event["content_index"]) == (
            message["id"],
            0,
            0,
        )
        assert "obfuscation" not in event


def test_obfuscation_only_on_deltas() -> None:
    events = run(Emitter(), ReasoningDelta("r"), TextDelta("t"), call(0, "{}", "c", "f"))
    for event in events:
        assert ("obfuscation" in event) == event["type"].endswith(".delta")
        if "obfuscation" in event:
            assert isinstance(event["obfuscation"], str)
            assert 1 <= len(event["obfuscation"]) <= 16


def test_refusal_after_text_is_a_second_part_of_the_same_message() -> None:
    emitter = Emitter(obfuscate=False)
    events = run(emitter, TextDelta("Sure. "), RefusalDelta("No."))
    [message] = emitter.output
    assert message["content"] == [
        {"type": "output_text", "annotations": [], "logprobs": [], "text": "Sure. "},
        {"type": "refusal", "refusal": "No."},
    ]
    # Part 0's done events come only when the item closes, after part 1's deltas: see the
    # report (OpenAI's wire likely closes a part before the next opens; not asserted here).
    assert sorted(kinds(events)) == sorted(
        [
            "output_item.added",
            *["content_part.added", "content_part.done"] * 2,
            "output_text.delta",
            "output_text.done",
            "refusal.delta",
            "refusal.done",
            "output_item.done",
        ]
    )
    by_kind = {event["type"].removeprefix("response."): event for event in events}
    assert by_kind["output_text.done"]["content_index"] == 0
    assert by_kind["output_text.done"]["text"] == "Sure. "
    assert by_kind["refusal.delta"]["content_index"] == 1
    assert by_kind["refusal.done"] == {
        **by_kind["refusal.done"],
        "content_index": 1,
        "refusal": "No.",
    }
    assert "logprobs" not in by_kind["refusal.delta"]


def test_items_are_sequential_blocks() -> None:
    emitter = Emitter(obfuscate=False)
    events = run(
        emitter,
        ReasoningDelta("think"),
        TextDelta("answer"),
        call(0, "", "call_a", "f"),
        call(0, '{"x":'),
        call(0, "1}"),
        call(1, "", "call_b", "g"),
        call(1, "{}"),
    )
    reasoning, message, first, second = emitter.output
    assert reasoning == {
        "id": reasoning["id"],
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "think"}],
    }
    assert message["content"][0]["text"] == "answer"
    assert (first["call_id"], first["name"], first["arguments"]) == ("call_a", "f", '{"x":1}')
    assert (second["call_id"], second["name"], second["arguments"]) == ("call_b", "g", "{}")
    assert first["status"] == second["status"] == "completed"
    added = [event for event in events if event["type"] == "response.output_item.added"]
    done = [event for event in events if event["type"] == "response.output_item.done"]
    assert [event["output_index"] for event in added] == [0, 1, 2, 3]
    assert [event["item"] for event in done] == emitter.output
    opened = -1
    for event in events:  # each block closes before the next opens
        if event["type"] == "response.output_item.added":
            assert opened == event["output_index"] - 1
        if event["type"] == "response.output_item.done":
            opened = event["output_index"]
    arguments_done = [
        event for event in events if event["type"] == "response.function_call_arguments.done"
    ]
    assert [(event["name"], event["arguments"]) for event in arguments_done] == [
        ("f", '{"x":1}'),
        ("g", "{}"),
    ]
    assert added[2]["item"]["arguments"] == ""
    assert added[2]["item"]["status"] == "in_progress"
    empty_deltas = [e for e in events if e["type"].endswith(".delta") and not e["delta"]]
    assert empty_deltas == []  # the name-only first piece of a call sends no delta


def test_a_name_arriving_late_is_kept() -> None:
    emitter = Emitter(obfuscate=False)
    run(emitter, call(0, "{", "call_a"), call(0, "}", name="late"))
    assert emitter.output[0]["name"] == "late"


@pytest.mark.parametrize(("limit", "names"), [(None, ["a", "b", "c"]), (2, ["a", "b"]), (0, [])])
def test_max_tool_calls_drops_later_calls_and_their_pieces(
    limit: int | None, names: list[str]
) -> None:
    emitter = Emitter(obfuscate=False, max_tool_calls=limit)
    pieces = [piece for i, n in enumerate("abc") for piece in (call(i, "", n, n), call(i, "{}"))]
    events = run(emitter, *pieces)
    assert [item["name"] for item in emitter.output] == names
    assert all(item["arguments"] == "{}" for item in emitter.output)
    assert sum(event["type"] == "response.output_item.added" for event in events) == len(names)


def test_close_incomplete_and_reasoning_has_no_status() -> None:
    emitter = Emitter(obfuscate=False)
    run(emitter, ReasoningDelta("hmm"), TextDelta("cut"), status="incomplete")
    reasoning, message = emitter.output
    assert "status" not in reasoning
    assert message["status"] == "incomplete"
    assert reasoning["content"][0]["text"] == "hmm"


def test_close_with_nothing_open() -> None:
    emitter = Emitter()
    assert emitter.close("completed") == []
    assert emitter.output == []
    assert emitter.event("x")["sequence_number"] == 0


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


@pytest.mark.parametrize(
    ("raw", "found", "finish"),
    [
        (chunk({"role": "assistant", "content": "", "refusal": None}), [], None),
        (chunk({"content": "hi"}), [TextDelta("hi")], None),
        (chunk({"refusal": "no"}), [RefusalDelta("no")], None),
        (chunk({"reasoning_content": "r"}), [ReasoningDelta("r")], None),
        (chunk({"reasoning": "r"}), [ReasoningDelta("r")], None),
        (
            chunk({"reasoning_content": "r", "content": "c"}),
            [ReasoningDelta("r"), TextDelta("c")],
            None,
        ),
        (chunk({}, "stop"), [], "stop"),
        (chunk({}, "length"), [], "length"),
        ({"choices": [], "usage": {"prompt_tokens": 1}}, [], None),
        ({"id": "x"}, [], None),
        (
            chunk(
                {
                    "tool_calls": [
                        {"index": 1, "id": "c1", "function": {"name": "f", "arguments": ""}},
                        {"function": {"arguments": "{}"}},
                    ]
                }
            ),
            [call(1, "", "c1", "f"), call(0, "{}")],
            None,
        ),
        (chunk({"content": "end"}, "stop"), [TextDelta("end")], "stop"),
    ],
)
def test_chunk_deltas(raw: Any, found: list[Any], finish: str | None) -> None:
    assert deltas(raw) == (found, finish)


@pytest.mark.parametrize(
    "raw", [[1, 2], "text", None, {"error": {"message": "boom"}}, {"error": "boom"}]
)
def test_bad_chunks_are_protocol_errors(raw: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        deltas(raw)
