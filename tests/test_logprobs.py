"""Pure logprobs translation: what is asked upstream, and how answers are reshaped."""

from __future__ import annotations

from app.providers import chunks, logprobs, translate
from app.providers.base import TextDelta


def test_request_fields_only_with_the_include() -> None:
    assert logprobs.request_fields(None, 5) == {}
    assert logprobs.request_fields(["reasoning.encrypted_content"], 5) == {}
    assert logprobs.request_fields([logprobs.INCLUDE], 0) == {"logprobs": True}
    assert logprobs.request_fields([logprobs.INCLUDE], 4) == {"logprobs": True, "top_logprobs": 4}


def test_malformed_entries_are_skipped_and_missing_bytes_filled() -> None:
    choice = {
        "logprobs": {
            "content": [
                {"token": "Hi", "logprob": -1, "top_logprobs": [{"token": "Yo", "logprob": -2}, 3]},
                {"token": None, "logprob": -1},
                "junk",
                {"token": "!", "logprob": "high"},
            ]
        }
    }
    assert logprobs.from_choice(choice) == [
        {
            "token": "Hi",
            "logprob": -1.0,
            "bytes": [72, 105],
            "top_logprobs": [{"token": "Yo", "logprob": -2.0, "bytes": [89, 111]}],
        }
    ]
    assert logprobs.from_choice({"logprobs": None}) == []
    assert logprobs.from_choice({"logprobs": {"content": "nope"}}) == []


def test_event_shape_drops_bytes() -> None:
    entry = {"token": "a", "logprob": -0.5, "bytes": [97], "top_logprobs": []}
    assert logprobs.for_event([entry]) == [{"token": "a", "logprob": -0.5, "top_logprobs": []}]


def test_chunks_attach_logprobs_only_when_wanted() -> None:
    entry = {"token": "a", "logprob": -0.5, "bytes": [97], "top_logprobs": []}
    chunk = {"choices": [{"delta": {"content": "a"}, "logprobs": {"content": [entry]}}]}
    assert chunks.deltas(chunk, with_logprobs=True)[0] == [TextDelta("a", (entry,))]
    assert chunks.deltas(chunk)[0] == [TextDelta("a")]


def test_an_unasked_completion_keeps_empty_logprobs() -> None:
    entry = {"token": "a", "logprob": -0.5, "bytes": [97], "top_logprobs": []}
    payload = {
        "choices": [
            {"message": {"content": "a"}, "logprobs": {"content": [entry]}, "finish_reason": "stop"}
        ]
    }
    unasked = translate.from_chat_completion(payload).output[0]["content"][0]
    asked = translate.from_chat_completion(payload, with_logprobs=True).output[0]["content"][0]
    assert unasked["logprobs"] == []
    assert asked["logprobs"] == [entry]
