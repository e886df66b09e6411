"""The OpenAI Agents SDK's tool loop, unchanged, against Rapport.

The SDK calls `responses.create`, runs the function tools the model asked for, and sends their
outputs back until the model answers in text. The test upstream asks for the tools named by
`[tool:NAME:JSON]` directives and, once it is given their results, answers "done: <results>".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIConversationsSession,
    OpenAIResponsesCompactionSession,
    OpenAIResponsesModel,
    Runner,
    SQLiteSession,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from app.context.compaction import SUMMARY_HEADING
from tests.conftest import Project, rapport_with_routes, sdk
from tests.harness import RapportServer
from tests.upstream import TestUpstream

# Traces would be exported to OpenAI's servers; a gateway's tests have no business there.
set_tracing_disabled(True)


@pytest.fixture
def looked_up() -> list[str]:
    """The cities the tools were called for, in call order."""
    return []


def forecaster(client: AsyncOpenAI, looked_up: list[str], **settings: Any) -> Agent[Any]:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        looked_up.append(city)
        return f"sunny in {city}"

    @function_tool
    def get_time(city: str) -> str:
        """The local time in a city."""
        looked_up.append(f"time:{city}")
        return f"noon in {city}"

    return Agent(
        name="forecaster",
        instructions="Answer with the tools' results.",
        tools=[get_weather, get_time],
        model=OpenAIResponsesModel(model="test-model", openai_client=client),
        model_settings=ModelSettings(**settings),
    )


def weather(city: str) -> str:
    return f"[tool:get_weather:{json.dumps({'city': city})}]"


async def test_tool_loop_runs_the_tool_and_answers_with_its_result(
    client: AsyncOpenAI, upstream: TestUpstream, looked_up: list[str]
) -> None:
    agent = forecaster(client, looked_up)
    result = await Runner.run(agent, f"What is the weather? {weather('Paris')}")
    assert result.final_output == "done: sunny in Paris"
    assert looked_up == ["Paris"]
    first, second = (request.body for request in upstream.requests[-2:])
    assert first["messages"][0] == {"role": "system", "content": "Answer with the tools' results."}
    assert {tool["function"]["name"] for tool in first["tools"]} == {"get_weather", "get_time"}
    assert first["tools"][0]["function"]["strict"] is True
    call = second["messages"][-2]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": "sunny in Paris",
    }
    stored = await client.responses.retrieve(result.last_response_id or "")
    assert stored.output_text == "done: sunny in Paris"


async def test_parallel_calls_are_all_run_and_answered_in_one_turn(
    client: AsyncOpenAI, upstream: TestUpstream, looked_up: list[str]
) -> None:
    agent = forecaster(client, looked_up, parallel_tool_calls=True)
    text = f'Weather and time? {weather("Oslo")} [tool:get_time:{{"city": "Oslo"}}]'
    result = await Runner.run(agent, text)
    assert result.final_output == "done: sunny in Oslo; noon in Oslo"
    assert looked_up == ["Oslo", "time:Oslo"]
    assert upstream.requests[-2].body["parallel_tool_calls"] is True
    answered = upstream.last_request().body["messages"]
    assert [m["role"] for m in answered[-3:]] == ["assistant", "tool", "tool"]
    assert len(answered[-3]["tool_calls"]) == 2


async def test_a_second_turn_continues_from_the_stored_response(
    client: AsyncOpenAI, upstream: TestUpstream, looked_up: list[str]
) -> None:
    agent = forecaster(client, looked_up)
    first = await Runner.run(agent, f"Weather? {weather('Rome')}")
    second = await Runner.run(
        agent, f"And now? {weather('Lima')}", previous_response_id=first.last_response_id
    )
    assert second.final_output == "done: sunny in Lima"
    assert looked_up == ["Rome", "Lima"]
    # Only the new turn travelled from the SDK; Rapport rebuilt the rest from what it stored.
    messages = upstream.last_request().body["messages"]
    contents = [m.get("content") for m in messages]
    assert "done: sunny in Rome" in contents
    assert "sunny in Rome" in contents
    assert "sunny in Lima" in contents


async def test_the_loop_keeps_a_rapport_conversation(
    client: AsyncOpenAI, looked_up: list[str]
) -> None:
    conversation = await client.conversations.create()
    agent = forecaster(client, looked_up)
    result = await Runner.run(agent, f"Weather? {weather('Kyiv')}", conversation_id=conversation.id)
    assert result.final_output == "done: sunny in Kyiv"
    items = await client.conversations.items.list(conversation.id, order="asc")
    assert [item.type for item in items.data] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]


async def test_the_streamed_loop_sees_the_calls_and_the_answer(
    client: AsyncOpenAI, looked_up: list[str]
) -> None:
    agent = forecaster(client, looked_up)
    run = Runner.run_streamed(agent, f"Weather? {weather('Quito')}")
    kinds = [
        event.item.type
        async for event in run.stream_events()
        if event.type == "run_item_stream_event"
    ]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert run.final_output == "done: sunny in Quito"
    assert looked_up == ["Quito"]


async def test_a_conversations_session_remembers_across_runs(
    client: AsyncOpenAI, upstream: TestUpstream, looked_up: list[str]
) -> None:
    """The SDK's OpenAIConversationsSession keeps the history in Rapport's Conversations API:
    it lists the items, replays them as input, and appends each run's new items."""
    session = OpenAIConversationsSession(openai_client=client)
    agent = forecaster(client, looked_up)
    first = await Runner.run(agent, f"Weather? {weather('Bern')}", session=session)
    assert first.final_output == "done: sunny in Bern"
    second = await Runner.run(agent, "thanks", session=session)
    assert second.final_output == "echo: thanks"
    replayed = upstream.last_request().body["messages"]
    assert [m["role"] for m in replayed] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert replayed[3]["content"] == "sunny in Bern"
    stored = await client.conversations.items.list(session.session_id, order="asc")
    assert [item.type for item in stored.data] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
        "message",
    ]
    assert await session.pop_item() is not None  # the SDK's undo: DELETE of the last item
    after_pop = await client.conversations.items.list(session.session_id, order="asc")
    assert len(after_pop.data) == 5


@pytest.fixture(scope="module")
def openai_named(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    """A Rapport whose route is named like an OpenAI model: the SDK's compaction session only
    accepts OpenAI model names, and this one leads to the test upstream."""
    with rapport_with_routes(database_url, upstream, **{"gpt-4.1": {}}) as server:
        yield server


async def test_a_compaction_session_compacts_through_rapport(
    openai_named: RapportServer, project: Project, upstream: TestUpstream, looked_up: list[str]
) -> None:
    """OpenAIResponsesCompactionSession calls /v1/responses/compact after a run and keeps only
    what it answers; the next run sends that compaction item back, and Rapport opens it."""
    client = sdk(openai_named, project)
    session = OpenAIResponsesCompactionSession(
        "compacting",
        SQLiteSession("compacting"),
        client=client,
        model="gpt-4.1",
        should_trigger_compaction=lambda context: True,
    )
    agent = forecaster(client, looked_up)
    agent.model = OpenAIResponsesModel(model="gpt-4.1", openai_client=client)
    first = await Runner.run(agent, f"Weather? {weather('Lyon')}", session=session)
    assert first.final_output == "done: sunny in Lyon"
    kept = await session.get_items()
    assert [item["type"] for item in kept] == ["message", "compaction"]
    assert kept[0]["role"] == "user"
    await Runner.run(agent, "and tomorrow?", session=session)
    [sent] = [
        request.body["messages"]
        for request in upstream.requests
        if request.body["messages"][-1] == {"role": "user", "content": "and tomorrow?"}
    ]
    assert sent[1] == {"role": "user", "content": f"Weather? {weather('Lyon')}"}
    assert SUMMARY_HEADING in sent[2]["content"]  # the compaction item, opened and rendered
    assert len(sent) == 4  # system, user, summary, the new question: the tool turn is folded
