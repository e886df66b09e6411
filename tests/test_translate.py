"""Pure chat-completion → Responses translation of whole (non-streamed) answers."""

from __future__ import annotations

import pytest

from app.providers import translate
from app.providers.catalog import catalog_for
from app.wire.tools import CustomTool


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_either_reasoning_field_becomes_a_reasoning_item(field: str) -> None:
    payload = {
        "choices": [{"message": {field: "thought", "content": "answer"}, "finish_reason": "stop"}],
        "usage": {"completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 2}},
    }
    result = translate.from_chat_completion(payload)
    reasoning, message = result.output
    assert reasoning["type"] == "reasoning"
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "thought"}]
    assert message["content"][0]["text"] == "answer"
    assert result.usage.output_tokens_details.reasoning_tokens == 2


def test_custom_tool_calls_become_custom_items_and_others_function_calls() -> None:
    calls = [
        {"id": "c1", "function": {"name": "shell", "arguments": '{"input": "ls"}'}},
        {"id": "c2", "function": {"name": "clock", "arguments": "{}"}},
    ]
    payload = {
        "choices": [
            {"message": {"content": None, "tool_calls": calls}, "finish_reason": "tool_calls"}
        ]
    }
    tools = catalog_for([CustomTool(name="shell")], [])
    custom, function = translate.from_chat_completion(payload, tools).output
    assert (custom["type"], custom["input"], custom["call_id"]) == ("custom_tool_call", "ls", "c1")
    assert (function["type"], function["arguments"]) == ("function_call", "{}")
