"""Context windows end to end: counts, truncation, refusals, input_tokens, and the item cache.

The routes here have small windows, so a few messages fill them; the test upstream records what
it was sent, which is how every test checks that the model never saw an over-long context.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.tokens.counting import MESSAGE_FRAMING, REPLY_PRIMING, TokenCounter
from tests.conftest import Project, rapport_with_routes, sdk, words
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

WINDOW = 400
RESERVE = 50
BUDGET = WINDOW - RESERVE
O200K = TokenCounter("o200k_base")
CL100K = TokenCounter("cl100k_base")


@pytest.fixture(scope="module")
def windowed(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    limits = {"context_window": WINDOW, "max_output_tokens": RESERVE}
    with rapport_with_routes(
        database_url,
        upstream,
        small=limits,
        **{"gpt-4-small": {**limits, "upstream_model": "gpt-4"}},
    ) as server:
        yield server


@pytest.fixture
def client(windowed: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(windowed, project)


def message_tokens(counter: TokenCounter, text: str) -> int:
    return MESSAGE_FRAMING + counter.text(text)


def sent_tokens(counter: TokenCounter, body: dict[str, Any]) -> int:
    """What Rapport's accounting says the upstream was sent (string contents only here)."""
    return REPLY_PRIMING + sum(
        message_tokens(counter, m["content"]) for m in body["messages"] if m.get("content")
    )


async def chain(client: AsyncOpenAI, turns: int, size: int, model: str = "small") -> str:
    previous = None
    for turn in range(turns):
        response = await client.responses.create(
            model=model,
            input=words(f"t{turn}w", size),
            previous_response_id=previous,
            truncation="auto",  # the chain itself outgrows the window
        )
        previous = response.id
    assert previous is not None
    return previous


async def test_over_the_budget_is_refused_before_the_upstream(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="small", input=words("w", 400))
    error = refused.value.body
    assert error == {
        "message": "Your input exceeds the context window of this model. "
        "Please adjust your input and try again.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "context_length_exceeded",
    }
    assert upstream.requests == []


async def test_exactly_at_the_budget_passes_and_one_token_over_is_refused(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    text = words("w", 100)
    needed = REPLY_PRIMING + message_tokens(O200K, text)
    counted = await client.responses.input_tokens.count(model="small", input=text)
    assert counted.input_tokens == needed
    # max_output_tokens is the reserve: the budget is the window minus it.
    exact = await client.responses.create(
        model="small", input=text, max_output_tokens=WINDOW - needed
    )
    assert exact.status == "completed"
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="small", input=text, max_output_tokens=WINDOW - needed + 1
        )
    assert refused.value.code == "context_length_exceeded"
    assert len(upstream.requests) == 1


async def test_auto_drops_the_oldest_turns_until_it_fits(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    last = await chain(client, turns=6, size=20)
    question = words("now", 20)
    response = await client.responses.create(
        model="small",
        input=question,
        previous_response_id=last,
        truncation="auto",
        instructions="be brief",
    )
    assert response.truncation == "auto"
    sent = upstream.last_request().body
    contents = [m["content"] for m in sent["messages"]]
    assert contents[0] == "be brief"  # instructions are never dropped
    assert contents[-1] == question  # nor the new input
    assert words("t0w", 20) not in contents  # the oldest turn went first
    assert words("t5w", 20) in contents  # the newest history stayed
    # Whole items, oldest first: what is left is a suffix of the history.
    history = [c for c in contents[1:-1]]
    full = [
        text for t in range(6) for text in (words(f"t{t}w", 20), "echo: " + words(f"t{t}w", 20))
    ]
    assert history == full[len(full) - len(history) :]
    assert sent_tokens(O200K, sent) <= BUDGET
    # Disabled (the default), the same request is refused.
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="small", input=question, previous_response_id=last)
    assert refused.value.code == "context_length_exceeded"


async def test_auto_never_leaves_an_orphan_tool_result(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    """Dropping the question and the call is enough by count; the call's output goes too."""
    conversation = await client.conversations.create(
        items=[
            {"role": "user", "content": "look it up"},
            {"type": "function_call", "call_id": "call_a", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_a", "output": words("out", 40)},
            {"role": "assistant", "content": "found it"},
        ]
    )
    question = message_tokens(O200K, "look it up")
    head = question + MESSAGE_FRAMING + O200K.text("lookup") + O200K.text("{}")

    async def over_by(size: int) -> int:
        counted = await client.responses.input_tokens.count(
            model="small", input=words("q", size), conversation=conversation.id
        )
        return counted.input_tokens - BUDGET

    size = 1
    while await over_by(size) <= question:  # dropping the question alone must not be enough
        size += 1
    assert question < await over_by(size) <= head  # the question and the call are enough
    await client.responses.create(
        model="small", input=words("q", size), conversation=conversation.id, truncation="auto"
    )
    messages = upstream.last_request().body["messages"]
    assert [(m["role"], m.get("content")) for m in messages] == [
        ("assistant", "found it"),
        ("user", words("q", size)),
    ]
    assert sent_tokens(O200K, upstream.last_request().body) <= BUDGET


async def test_a_call_answered_in_the_new_input_keeps_its_call(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    tools: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    first = await client.responses.create(model="small", input=words("old", 60))
    asked = await client.responses.create(
        model="small",
        input="[tool:lookup:{}] " + words("ask", 10),
        previous_response_id=first.id,
        tools=tools,
    )
    call = asked.output[0]
    await client.responses.create(
        model="small",
        previous_response_id=asked.id,
        tools=tools,
        truncation="auto",
        input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": words("out", 80)}
        ],
    )
    messages = upstream.last_request().body["messages"]
    assert [m["role"] for m in messages][-2:] == ["assistant", "tool"]
    assert messages[-2]["tool_calls"][0]["id"] == call.call_id
    assert words("old", 60) not in [m.get("content") for m in messages]


async def test_the_new_input_alone_too_big_is_refused_even_with_auto(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await client.responses.create(model="small", input="short")
    upstream.clear()
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="small", input=words("w", 400), previous_response_id=first.id, truncation="auto"
        )
    assert refused.value.code == "context_length_exceeded"
    assert upstream.requests == []


async def test_conversation_history_is_truncated_too(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    conversation = await client.conversations.create(
        items=[{"role": "user", "content": words(f"c{n}w", 40)} for n in range(6)]
    )
    await client.responses.create(
        model="small", input="and now?", conversation=conversation.id, truncation="auto"
    )
    contents = [m["content"] for m in upstream.last_request().body["messages"]]
    assert contents[-1] == "and now?"
    assert words("c0w", 40) not in contents
    assert words("c5w", 40) in contents
    assert sent_tokens(O200K, upstream.last_request().body) <= BUDGET
    # Nothing was dropped from the conversation itself: truncation shapes the request only.
    items = [item async for item in client.conversations.items.list(conversation.id, limit=100)]
    assert len(items) == 8


async def test_background_responses_truncate_in_the_worker(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    last = await chain(client, turns=6, size=20)
    queued = await client.responses.create(
        model="small",
        input="bg question",
        previous_response_id=last,
        truncation="auto",
        background=True,
    )
    done = queued
    for _ in range(200):
        done = await client.responses.retrieve(queued.id)
        if done.status not in ("queued", "in_progress"):
            break
        await _sleep()
    assert done.status == "completed"
    assert sent_tokens(O200K, upstream.last_request().body) <= BUDGET
    assert upstream.last_request().body["messages"][-1]["content"] == "bg question"


async def test_input_tokens_counts_like_a_create_would(
    client: AsyncOpenAI, other_client: AsyncOpenAI, windowed: RapportServer
) -> None:
    first = await client.responses.create(model="small", input="hello there")
    counted = await client.responses.input_tokens.count(
        model="small", input="and again", previous_response_id=first.id, instructions="be kind"
    )
    expected = (
        REPLY_PRIMING
        + message_tokens(O200K, "be kind")
        + message_tokens(O200K, "hello there")
        + message_tokens(O200K, "echo: hello there")
        + message_tokens(O200K, "and again")
    )
    assert counted.input_tokens == expected
    raw = await client.responses.input_tokens.with_raw_response.count(model="small", input="x")
    document = raw.http_response.json()
    assert document["object"] == "response.input_tokens"
    assert schema_errors("TokenCountsResource", document) == []
    # Another encoding for another model family; and counts are never refused.
    assert (
        await client.responses.input_tokens.count(model="gpt-4-small", input="tiktoken is great!")
    ).input_tokens == REPLY_PRIMING + MESSAGE_FRAMING + 6
    big = await client.responses.input_tokens.count(model="small", input=words("w", 400))
    assert big.input_tokens > BUDGET
    # With truncation auto the count is the truncated context's.
    last = await chain(client, turns=6, size=20)
    truncated = await client.responses.input_tokens.count(
        model="small", input="q", previous_response_id=last, truncation="auto"
    )
    assert truncated.input_tokens <= BUDGET
    # The same scoping and errors as create.
    with pytest.raises(openai.BadRequestError) as foreign:
        await other_client.responses.input_tokens.count(
            model="small", input="x", previous_response_id=first.id
        )
    assert foreign.value.code == "previous_response_not_found"


async def test_input_tokens_reads_a_conversation_without_locking_it(
    client: AsyncOpenAI,
) -> None:
    conversation = await client.conversations.create(
        items=[{"role": "user", "content": "hello there"}]
    )
    counted = await client.responses.input_tokens.count(
        model="small", input="next", conversation=conversation.id
    )
    assert counted.input_tokens == REPLY_PRIMING + message_tokens(
        O200K, "hello there"
    ) + message_tokens(O200K, "next")
    reply = await client.responses.create(model="small", input="next", conversation=conversation.id)
    assert reply.status == "completed"  # the count took no lock
    with pytest.raises(openai.NotFoundError):
        await client.responses.input_tokens.count(
            model="small", input="x", conversation="conv_unknown"
        )


async def test_items_are_stored_with_their_counts(
    client: AsyncOpenAI, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.responses.create(model="gpt-4-small", input="tiktoken is great!")
    async with sessions() as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT side, token_count, token_encoding FROM items "
                    "WHERE response_id = :id ORDER BY side"
                ),
                {"id": response.id},
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("input", MESSAGE_FRAMING + 6, "cl100k_base"),
        ("output", message_tokens(CL100K, "echo: tiktoken is great!"), "cl100k_base"),
    ]


async def test_a_cached_count_of_another_encoding_is_not_reused(
    client: AsyncOpenAI, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Made for gpt-4 (cl100k), continued by an o200k model: counted again, so still exact.
    first = await client.responses.create(model="gpt-4-small", input="tiktoken is great!")
    counted = await client.responses.input_tokens.count(
        model="small", input="x", previous_response_id=first.id
    )
    assert counted.input_tokens == (
        REPLY_PRIMING
        + message_tokens(O200K, "tiktoken is great!")
        + message_tokens(O200K, "echo: tiktoken is great!")
        + message_tokens(O200K, "x")
    )
    # And a poisoned cache entry for this encoding would be used as is: the cache is read.
    async with sessions() as session, session.begin():
        await session.execute(
            sa.text(
                "UPDATE items SET token_count = 1000, token_encoding = 'o200k_base' "
                "WHERE response_id = :id AND side = 'input'"
            ),
            {"id": first.id},
        )
    recounted = await client.responses.input_tokens.count(
        model="small", input="x", previous_response_id=first.id
    )
    assert (
        recounted.input_tokens
        == counted.input_tokens - message_tokens(O200K, "tiktoken is great!") + 1000
    )


async def test_an_upstream_context_length_error_is_openai_s_error(
    client: AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="small", input="[overflow] too long for it")
    assert refused.value.code == "context_length_exceeded"
    assert refused.value.body["param"] == "input"
    message = refused.value.body["message"]
    assert message.startswith("Your input exceeds the context window of this model.")
    response_id = message.split("The response ")[1].split(" ")[0]
    stored = await client.responses.retrieve(response_id)
    assert stored.status == "failed"
    assert stored.error is not None
    # A Response's error codes are a closed list: the stored code is invalid_prompt.
    assert stored.error.code == "invalid_prompt"
    assert "maximum context length" in stored.error.message


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.05)


async def chain_counts(
    sessions: async_sessionmaker[AsyncSession], ids: list[str]
) -> list[tuple[int | None, str | None, int]]:
    """Each response's running count and its encoding, beside its own items' counts."""
    async with sessions() as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT r.id, r.chain_tokens, r.chain_encoding, "
                    "(SELECT SUM(token_count) FROM items WHERE response_id = r.id) AS own "
                    "FROM responses AS r WHERE r.id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        ).all()
    found = {row[0]: (row[1], row[2], int(row[3])) for row in rows}
    return [found[response_id] for response_id in ids]


async def test_a_chain_keeps_its_running_count(
    client: AsyncOpenAI, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Each stored response carries the tokens of its chain through its output (what the
    read stops its walk by), foreground and background alike; a turn counted in another
    encoding has none, nor has any turn after it (their reads walk the whole chain)."""
    ids: list[str] = []
    previous = None
    for turn, background in enumerate((False, False, True, False)):
        response = await client.responses.create(
            model="small",
            input=words(f"c{turn}w", 10),
            previous_response_id=previous,
            truncation="auto",
            background=background,
        )
        while response.status in ("queued", "in_progress"):
            response = await client.responses.retrieve(response.id)
        assert response.status == "completed"
        ids.append(previous := response.id)
    counted = await chain_counts(sessions, ids)
    running = 0
    for chain_tokens, encoding, own in counted:
        running += own
        assert (chain_tokens, encoding) == (running, "o200k_base")
    other = await client.responses.create(
        model="gpt-4-small", input="other", previous_response_id=previous, truncation="auto"
    )
    after = await client.responses.create(
        model="gpt-4-small", input="after", previous_response_id=other.id, truncation="auto"
    )
    assert [c[0] for c in await chain_counts(sessions, [other.id, after.id])] == [None, None]


async def test_a_cancelled_turn_keeps_the_running_count(
    client: AsyncOpenAI, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A cancel keeps no output: the chain's count grows by the input alone, and the next
    turn, continued from the cancelled one, counts on from there."""
    first = await client.responses.create(model="small", input="start", truncation="auto")
    slow = await client.responses.create(
        model="small",
        input="[sleep:5000] wait",
        previous_response_id=first.id,
        truncation="auto",
        background=True,
    )
    cancelled = await client.responses.cancel(slow.id)
    assert cancelled.status == "cancelled"
    assert cancelled.output == []
    after = await client.responses.create(
        model="small", input="after", previous_response_id=slow.id, truncation="auto"
    )
    counted = await chain_counts(sessions, [first.id, slow.id, after.id])
    running = 0
    for chain_tokens, encoding, own in counted:
        running += own
        assert (chain_tokens, encoding) == (running, "o200k_base")


async def test_a_chain_begun_before_running_counts_gets_one_on_its_next_turn(
    client: AsyncOpenAI, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Rows written before migration 0011 have no running count: the next turn reads the
    chain whole (as it must), and the total that read counted becomes its own count's start,
    so every later turn stops its walk at the window again."""
    old = [await client.responses.create(model="small", input="one", truncation="auto")]
    for text in ("two", "three"):
        old.append(
            await client.responses.create(
                model="small", input=text, previous_response_id=old[-1].id, truncation="auto"
            )
        )
    ids = [response.id for response in old]
    async with sessions() as session, session.begin():
        await session.execute(
            sa.text(
                "UPDATE responses SET chain_tokens = NULL, chain_encoding = NULL "
                "WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        )
    healed = await client.responses.create(
        model="small", input="four", previous_response_id=ids[-1], truncation="auto"
    )
    later = await client.responses.create(
        model="small", input="five", previous_response_id=healed.id, truncation="auto"
    )
    counted = await chain_counts(sessions, [*ids, healed.id, later.id])
    assert [c[0] for c in counted[:3]] == [None, None, None]
    running = sum(own for _, _, own in counted[:3])
    for chain_tokens, encoding, own in counted[3:]:
        running += own
        assert (chain_tokens, encoding) == (running, "o200k_base")
