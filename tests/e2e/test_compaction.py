"""Compaction end to end: server-side (context_management) and standalone (/responses/compact).

The test upstream answers every request with "echo: <last user text>", so the summary of a
compaction is "echo: Summarize the conversation above, as instructed.": the tests can tell the
summary call from the answer and see exactly what the model was sent after the compaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from app.context.compaction import SUMMARY_HEADING, SUMMARY_INSTRUCTIONS, SUMMARY_REQUEST
from tests.conftest import Project, rapport_with_routes, sdk, words
from tests.e2e.test_streaming import check_stream, parse_frames
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

SUMMARY = SUMMARY_HEADING + "echo: " + SUMMARY_REQUEST
COMPACTING: Any = [{"type": "compaction", "compact_threshold": 1000}]


@pytest.fixture(scope="module")
def windowed(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    with rapport_with_routes(
        database_url, upstream, roomy={"context_window": 8000, "max_output_tokens": 500}
    ) as server:
        yield server


@pytest.fixture
def client(windowed: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(windowed, project)


async def long_chain(client: AsyncOpenAI, turns: int = 3) -> str:
    """Three turns of 200 words: ≈ 1,300 tokens of context, past a threshold of 1,000."""
    previous = None
    for turn in range(turns):
        response = await client.responses.create(
            model="roomy", input=words(f"t{turn}w", 200), previous_response_id=previous
        )
        previous = response.id
    assert previous is not None
    return previous


def contents(body: dict[str, Any]) -> list[Any]:
    return [m.get("content") for m in body["messages"]]


async def test_past_the_threshold_the_response_compacts_first(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    last = await long_chain(client)
    upstream.clear()
    raw = await client.responses.with_raw_response.create(
        model="roomy", input="what now?", previous_response_id=last, context_management=COMPACTING
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    response = raw.parse()
    assert [item.type for item in response.output] == ["compaction", "message"]
    compaction = document["output"][0]
    assert compaction["id"].startswith("cmp_")
    assert set(compaction) >= {"id", "type", "encrypted_content"}
    assert "Summarize" not in compaction["encrypted_content"]  # opaque to the client
    summary_call, answer_call = upstream.requests
    assert summary_call.body["messages"][0] == {"role": "system", "content": SUMMARY_INSTRUCTIONS}
    assert contents(summary_call.body)[-2:] == ["what now?", SUMMARY_REQUEST]
    # The answer sees every user message, the summary in place of the model's turns, and
    # the new input last.
    assert contents(answer_call.body) == [
        words("t0w", 200),
        SUMMARY,
        words("t1w", 200),
        words("t2w", 200),
        "what now?",
    ]
    assert response.output_text == "echo: what now?"
    # Both calls are paid for.
    assert response.usage is not None
    assert response.usage.input_tokens > 600 * 2


async def test_later_turns_read_the_compaction_instead_of_what_it_replaced(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    last = await long_chain(client)
    compacted = await client.responses.create(
        model="roomy", input="what now?", previous_response_id=last, context_management=COMPACTING
    )
    upstream.clear()
    await client.responses.create(
        model="roomy", input="and then?", previous_response_id=compacted.id
    )
    assert contents(upstream.last_request().body) == [
        words("t0w", 200),
        SUMMARY,
        words("t1w", 200),
        words("t2w", 200),
        "what now?",
        "echo: what now?",
        "and then?",
    ]
    # The compaction item is stored and listed like any item.
    stored = await client.responses.retrieve(compacted.id)
    assert [item.type for item in stored.output] == ["compaction", "message"]


async def test_people_s_messages_alone_are_never_compacted(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    """A compaction keeps user messages verbatim: with nothing else to fold, it would gain
    nothing, so a context of user messages past the threshold is sent as it is."""
    conversation = await client.conversations.create(
        items=[{"role": "user", "content": words(f"c{n}w", 200)} for n in range(3)]
    )
    response = await client.responses.create(
        model="roomy", input="go", conversation=conversation.id, context_management=COMPACTING
    )
    assert [item.type for item in response.output] == ["message"]
    assert len(upstream.requests) == 1


async def test_below_the_threshold_nothing_is_compacted(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await client.responses.create(model="roomy", input="hello")
    upstream.clear()
    response = await client.responses.create(
        model="roomy", input="again", previous_response_id=first.id, context_management=COMPACTING
    )
    assert [item.type for item in response.output] == ["message"]
    assert len(upstream.requests) == 1


async def test_compaction_streams_its_item_first(
    client: AsyncOpenAI, windowed: RapportServer, project: Project
) -> None:
    last = await long_chain(client)
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(base_url=windowed.base_url, headers=headers, timeout=10) as http:
        body = {
            "model": "roomy",
            "input": "stream now",
            "previous_response_id": last,
            "context_management": COMPACTING,
            "stream": True,
        }
        async with http.stream("POST", "/responses", json=body) as answer:
            events = parse_frames((await answer.aread()).decode())
    final = check_stream(events)  # OpenAI's invariants and schema, event by event
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [e["item"]["type"] for e in added] == ["compaction", "message"]
    assert added[0]["output_index"] == 0
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert done[0]["item"]["type"] == "compaction"
    assert done[0]["item"]["encrypted_content"]
    assert events[-1]["type"] == "response.completed"
    stored = await client.responses.retrieve(final["id"])
    assert [item.type for item in stored.output] == ["compaction", "message"]
    assert stored.output[0].model_dump(exclude_none=True) == done[0]["item"]


async def test_conversations_list_the_compaction_item(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    conversation = await client.conversations.create(
        items=[
            {"role": "user" if n % 2 == 0 else "assistant", "content": words(f"c{n}w", 200)}
            for n in range(3)
        ]
    )
    await client.responses.create(
        model="roomy", input="sum up", conversation=conversation.id, context_management=COMPACTING
    )
    items = [
        item
        async for item in client.conversations.items.list(conversation.id, limit=100, order="asc")
    ]
    assert [item.type for item in items][-3:] == ["message", "compaction", "message"]
    upstream.clear()
    await client.responses.create(model="roomy", input="next", conversation=conversation.id)
    assert SUMMARY in contents(upstream.last_request().body)


async def test_standalone_compact_and_its_output_as_the_next_input(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    history: Any = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    raw = await client.responses.with_raw_response.compact(model="roomy", input=history)
    document = raw.http_response.json()
    assert document["object"] == "response.compaction"
    assert schema_errors("CompactResource", document) == []
    compacted = raw.parse()
    kinds = [(item.type, getattr(item, "role", None)) for item in compacted.output]
    assert kinds == [("message", "user"), ("message", "user"), ("compaction", None)]
    assert compacted.usage.total_tokens > 0
    upstream.clear()
    # The output goes back verbatim, as OpenAI documents (the SDK types its user messages as
    # output messages, so the raw JSON is what a client should replay).
    next_input = list(document["output"])
    next_input.append({"role": "user", "content": "third question"})
    await client.responses.create(model="roomy", input=next_input)
    assert contents(upstream.last_request().body) == [
        "first question",
        "second question",
        SUMMARY,
        "third question",
    ]


async def test_compact_from_a_stored_chain_and_its_errors(
    client: AsyncOpenAI, other_client: AsyncOpenAI
) -> None:
    first = await client.responses.create(model="roomy", input="remember this")
    compacted = await client.responses.compact(model="roomy", previous_response_id=first.id)
    assert [item.type for item in compacted.output] == ["message", "compaction"]
    with pytest.raises(openai.BadRequestError) as foreign:
        await other_client.responses.compact(model="roomy", previous_response_id=first.id)
    assert foreign.value.code == "previous_response_not_found"


async def test_a_tampered_compaction_item_is_refused(client: AsyncOpenAI) -> None:
    compacted = await client.responses.compact(model="roomy", input="keep me")
    item = compacted.output[-1].model_dump(exclude_none=True)
    item["encrypted_content"] = item["encrypted_content"][:-8] + "AAAAAAAA"
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="roomy", input=[item, {"role": "user", "content": "hi"}]
        )
    assert refused.value.code == "invalid_encrypted_content"
