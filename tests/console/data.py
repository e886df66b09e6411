"""Real data for console tests, made through the openai SDK against the test upstream."""

from __future__ import annotations

from typing import Any

import msgspec
from openai import AsyncOpenAI

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


class Story(msgspec.Struct):
    """A chain with a branch, a tool call answered in the next turn, and a conversation."""

    first: str
    second: str  # continues first
    branch: str  # also continues first
    tool_call: str  # a function_call output, continuing second
    tool_answer: str  # its function_call_output as input, then the answer
    conversation: str
    on_conversation: str


async def story(client: AsyncOpenAI) -> Story:
    first = await client.responses.create(
        model="test-model",
        input="[reasoning:thinking about primes] Name a prime number.",
        instructions="Answer in one word.",
        metadata={"customer": "acme", "ticket": "T-1"},
    )
    second = await client.responses.create(
        model="test-model", input="And the next one?", previous_response_id=first.id
    )
    branch = await client.responses.create(
        model="renamed", input="Another branch instead.", previous_response_id=first.id
    )
    call = await client.responses.create(
        model="test-model",
        input='[tool:get_weather:{"city": "Paris"}]',
        tools=[WEATHER_TOOL],
        previous_response_id=second.id,
    )
    call_id = next(item.call_id for item in call.output if item.type == "function_call")
    answer = await client.responses.create(
        model="test-model",
        input=[{"type": "function_call_output", "call_id": call_id, "output": "sunny, 21 C"}],
        tools=[WEATHER_TOOL],
        previous_response_id=call.id,
    )
    conversation = await client.conversations.create(metadata={"topic": "greetings"})
    await client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "Added by hand"}]
    )
    on_conversation = await client.responses.create(
        model="test-model", input="Hello in a conversation", conversation=conversation.id
    )
    return Story(
        first.id,
        second.id,
        branch.id,
        call.id,
        answer.id,
        conversation.id,
        on_conversation.id,
    )
