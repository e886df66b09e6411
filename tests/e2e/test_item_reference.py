"""`item_reference` input items: stored items named by id instead of sent again."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from tests.upstream import TestUpstream


def ref(item_id: str) -> Any:
    return {"type": "item_reference", "id": item_id}


async def test_a_referenced_answer_and_question_are_sent_as_themselves(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await client.responses.create(model="test-model", input="first question")
    [question] = [item async for item in client.responses.input_items.list(first.id)]
    answer = first.output[0]
    second = await client.responses.create(
        model="test-model",
        input=[ref(question.id), ref(answer.id), {"role": "user", "content": "and then?"}],
    )
    assert upstream.last_request().body["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "echo: first question"},
        {"role": "user", "content": "and then?"},
    ]
    listed = [item async for item in client.responses.input_items.list(second.id, order="asc")]
    assert [item.type for item in listed] == ["message", "message", "message"]
    copied = listed[1].model_dump()
    assert copied["id"] != answer.id  # stored again under an id of ours, as a replay would be
    assert copied["id"].startswith("msg_")
    assert copied["content"] == answer.model_dump()["content"]
    assert copied["status"] == "completed"


async def test_type_is_optional(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    first = await client.responses.create(model="test-model", input="remember me")
    bare: Any = [{"id": first.output[0].id}, {"role": "user", "content": "ok"}]
    await client.responses.create(model="test-model", input=bare)
    assert upstream.last_request().body["messages"][0] == {
        "role": "assistant",
        "content": "echo: remember me",
    }


async def test_a_referenced_call_pairs_with_its_output(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    tools: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    first = await client.responses.create(
        model="test-model", input='[tool:lookup:{"q": 1}]', tools=tools
    )
    call = first.output[0]
    assert call.type == "function_call"
    output: Any = {"type": "function_call_output", "call_id": call.call_id, "output": "found"}
    answer = await client.responses.create(
        model="test-model", input=[ref(call.id or ""), output], tools=tools
    )
    assert answer.output_text == "done: found"
    assistant, tool = upstream.last_request().body["messages"]
    assert assistant["content"] == ""  # a turn of calls alone: "" suits every upstream, null not
    assert assistant["tool_calls"][0]["id"] == call.call_id
    assert tool == {"role": "tool", "tool_call_id": call.call_id, "content": "found"}


async def _not_found(client: AsyncOpenAI, item_id: str) -> dict[str, Any]:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(model="test-model", input=[ref(item_id)])
    body = caught.value.body
    assert isinstance(body, dict)
    return body


async def test_unknown_foreign_deleted_and_unstored_items_are_404(
    client: AsyncOpenAI, other_client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    body = await _not_found(client, "msg_nothing")
    assert body == {
        "message": "Item with id 'msg_nothing' not found.",
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }
    foreign = await other_client.responses.create(model="test-model", input="theirs")
    await _not_found(client, foreign.output[0].id)
    deleted = await client.responses.create(model="test-model", input="gone soon")
    await client.responses.delete(deleted.id)
    await _not_found(client, deleted.output[0].id)
    unstored = await client.responses.create(model="test-model", input="ephemeral", store=False)
    upstream.clear()
    await _not_found(client, unstored.output[0].id)
    assert upstream.requests == []  # refused before any model call


async def test_conversation_items_can_be_references(client: AsyncOpenAI) -> None:
    first = await client.responses.create(model="test-model", input="carry this over")
    conversation = await client.conversations.create(items=[ref(first.output[0].id)])
    items = await client.conversations.items.list(conversation.id)
    [copied] = items.data
    assert copied.type == "message"
    assert copied.model_dump()["content"][0]["text"] == "echo: carry this over"
    await client.conversations.items.create(conversation.id, items=[ref(first.output[0].id)])
    assert len((await client.conversations.items.list(conversation.id)).data) == 2
    with pytest.raises(openai.NotFoundError) as caught:
        await client.conversations.items.create(conversation.id, items=[ref("msg_nothing")])
    assert caught.value.body["param"] == "items"  # type: ignore[index]


async def test_input_tokens_counts_what_the_reference_stands_for(client: AsyncOpenAI) -> None:
    first = await client.responses.create(model="test-model", input="count this answer")
    by_reference = await client.responses.input_tokens.count(
        model="gpt-4o", input=[ref(first.output[0].id)]
    )
    by_value = await client.responses.input_tokens.count(
        model="gpt-4o",
        input=[{"role": "assistant", "content": "echo: count this answer"}],
    )
    assert by_reference.input_tokens == by_value.input_tokens > 0
