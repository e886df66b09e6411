"""Token counting: the shipped encodings give tiktoken's known ids, and items count as stated."""

from __future__ import annotations

import pytest

from app.config import ModelRoute
from app.tokens import encodings, models
from app.tokens.counting import (
    IMAGE_DEFAULT,
    IMAGE_LOW_DETAIL,
    MESSAGE_FRAMING,
    TokenCounter,
)

ROUTE = ModelRoute(name="*")


@pytest.mark.parametrize(
    ("name", "text", "ids"),
    [
        # Known values: tiktoken's README and its test suite.
        ("cl100k_base", "hello world", [15339, 1917]),
        ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
        ("o200k_base", "hello world", [24912, 2375]),
        ("cl100k_base", "", []),
    ],
)
def test_shipped_encodings_give_known_token_ids(name: str, text: str, ids: list[int]) -> None:
    assert encodings.get(name).encode(text) == ids


def test_encodings_round_trip_unicode_and_code() -> None:
    text = "Ünïcödé ✓ — 日本語のテキスト\n    def f(x):\n        return x ** 2  # 🚀"
    for name in encodings.NAMES:
        encoding = encodings.get(name)
        assert encoding.decode(encoding.encode(text)) == text


def test_special_token_text_is_counted_as_plain_text() -> None:
    counter = TokenCounter("o200k_base")
    assert counter.text("<|endoftext|>") > 1  # not the single special token, and no error


def test_unknown_encoding_is_refused_clearly() -> None:
    with pytest.raises(encodings.EncodingUnavailable, match="unknown encoding"):
        encodings.get("p50k_base")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-5", "o200k_base"),
        ("llama-3.1-8b", "o200k_base"),  # the stated fallback for models OpenAI does not make
    ],
)
def test_encoding_by_model_name(model: str, expected: str) -> None:
    assert models.encoding_for(model, ROUTE) == expected


def test_route_tokenizer_wins_over_the_name() -> None:
    route = ModelRoute(name="gpt-4o", tokenizer="cl100k_base")
    assert models.encoding_for("gpt-4o", route) == "cl100k_base"


def test_window_from_route_else_known_family_else_unknown() -> None:
    route = ModelRoute(name="small", context_window=4096, max_output_tokens=512)
    assert models.window_for("small", route) == (4096, 512)
    assert models.window_for("gpt-4o", ROUTE) == (128_000, 16_384)
    assert models.window_for("llama-3.1-8b", ROUTE) == (None, None)
    renamed = ModelRoute(name="fast", upstream_model="gpt-4.1-mini")
    assert models.window_for("fast", renamed) == (1_047_576, 32_768)


def test_item_counts_follow_the_stated_accounting() -> None:
    counter = TokenCounter("o200k_base")
    hello = counter.text("hello world")
    assert hello == 2
    message = {"type": "message", "role": "user", "content": "hello world"}
    assert counter.item(message) == MESSAGE_FRAMING + 2
    parts = {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "hello world"},
            {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
            {"type": "input_image", "image_url": "https://example.com/b.png"},
            {"type": "input_file", "file_data": "x" * 41},
        ],
    }
    assert counter.item(parts) == MESSAGE_FRAMING + 2 + IMAGE_LOW_DETAIL + IMAGE_DEFAULT + 11
    call = {"type": "function_call", "call_id": "c", "name": "lookup", "arguments": '{"q":"x"}'}
    assert counter.item(call) == MESSAGE_FRAMING + counter.text("lookup") + counter.text(
        '{"q":"x"}'
    )
    output = {"type": "function_call_output", "call_id": "c", "output": "hello world"}
    assert counter.item(output) == MESSAGE_FRAMING + 2
    reasoning = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hello world"}]}
    assert counter.item(reasoning) == 2


def test_instructions_and_tools_count() -> None:
    counter = TokenCounter("cl100k_base")
    assert counter.instructions(None) == 0
    assert counter.instructions("hello world") == MESSAGE_FRAMING + 2
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    assert counter.tools([tool]) == counter.text(
        '{"type":"function","name":"lookup","parameters":{"type":"object"}}'
    )
