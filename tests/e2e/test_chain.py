"""previous_response_id: the whole chain as context, in order, at a constant query count."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI

from tests.harness import RapportServer
from tests.upstream import TestUpstream


async def build_chain(client: AsyncOpenAI, depth: int, instructions: str | None = None) -> str:
    previous: str | None = None
    for turn in range(depth):
        response = await client.responses.create(
            model="test-model",
            input=f"turn {turn}",
            previous_response_id=previous,
            instructions=instructions,
        )
        previous = response.id
    assert previous is not None
    return previous


async def test_chain_is_rebuilt_in_order_without_old_instructions(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await client.responses.create(
        model="test-model", input="turn 0", instructions="old rules"
    )
    second = await client.responses.create(
        model="test-model", input="turn 1", previous_response_id=first.id
    )
    await client.responses.create(
        model="test-model",
        input="turn 2",
        previous_response_id=second.id,
        instructions="new rules",
    )
    assert upstream.last_request().body["messages"] == [
        {"role": "system", "content": "new rules"},
        {"role": "user", "content": "turn 0"},
        {"role": "assistant", "content": "echo: turn 0"},
        {"role": "user", "content": "turn 1"},
        {"role": "assistant", "content": "echo: turn 1"},
        {"role": "user", "content": "turn 2"},
    ]


async def test_branches_share_history_but_not_each_other(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    root = await client.responses.create(model="test-model", input="root")
    await client.responses.create(model="test-model", input="left", previous_response_id=root.id)
    await client.responses.create(model="test-model", input="right", previous_response_id=root.id)
    contents = [m["content"] for m in upstream.last_request().body["messages"]]
    assert contents == ["root", "echo: root", "right"]


async def test_query_count_is_the_same_at_depth_2_and_depth_30(
    client: AsyncOpenAI, rapport: RapportServer, upstream: TestUpstream
) -> None:
    counts = []
    for depth in (2, 30):
        head = await build_chain(client, depth)
        seen = []
        for _ in range(3):  # the smallest of three: the server's sweeper may run meanwhile
            with rapport.count_statements() as counter:
                await client.responses.create(
                    model="test-model", input="next", previous_response_id=head
                )
            seen.append(len(counter.statements))
            assert len(upstream.last_request().body["messages"]) == 2 * depth + 1
        counts.append(min(seen))
    assert counts[0] == counts[1]


async def test_unknown_deleted_and_foreign_previous_ids(
    client: AsyncOpenAI, other_client: AsyncOpenAI
) -> None:
    mine = await client.responses.create(model="test-model", input="mine")
    theirs = await other_client.responses.create(model="test-model", input="theirs")
    deleted = await client.responses.create(model="test-model", input="gone")
    await client.responses.delete(deleted.id)
    missing = "resp_0000000000000000000000000000000000000000000000000"
    for previous in (missing, theirs.id, deleted.id):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(
                model="test-model", input="next", previous_response_id=previous
            )
        assert caught.value.code == "previous_response_not_found"
        assert caught.value.param == "previous_response_id"
        assert f"Previous response with id '{previous}' not found." in caught.value.message
    ok = await client.responses.create(model="test-model", input="x", previous_response_id=mine.id)
    assert ok.previous_response_id == mine.id


async def test_history_survives_deleting_an_ancestor(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await client.responses.create(model="test-model", input="a")
    second = await client.responses.create(
        model="test-model", input="b", previous_response_id=first.id
    )
    await client.responses.delete(first.id)
    await client.responses.create(model="test-model", input="c", previous_response_id=second.id)
    contents = [m["content"] for m in upstream.last_request().body["messages"]]
    assert contents == ["a", "echo: a", "b", "echo: b", "c"]


async def test_tool_pairing_errors(client: AsyncOpenAI) -> None:
    with_call = await client.responses.create(
        model="test-model",
        input="[tool:lookup:{}]",
        tools=[{"type": "function", "name": "lookup"}],
    )
    with pytest.raises(openai.BadRequestError) as missing_output:
        await client.responses.create(
            model="test-model", input="ignore it", previous_response_id=with_call.id
        )
    call_id = with_call.output[0].call_id  # type: ignore[union-attr]
    assert missing_output.value.message.endswith(
        f"No tool output found for function call {call_id}."
    )
    assert missing_output.value.param == "input"
    with pytest.raises(openai.BadRequestError) as orphan:
        await client.responses.create(
            model="test-model",
            input=[{"type": "function_call_output", "call_id": "call_nowhere", "output": "1"}],
        )
    assert "No tool call found for function call output with call_id call_nowhere." in (
        orphan.value.message
    )
