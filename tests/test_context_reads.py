"""Context reads cut to the window in SQL (app/context/repository.py), on Postgres and SQLite:
only the newest items that fit come back, with what the cut left out, and everything comes back
when the cut cannot be trusted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import ids
from app.cli import migrate
from app.context import history
from app.context import repository as reads
from app.context.history import Cut
from app.conversations import repository as conversations
from app.db.base import utcnow
from app.db.session import create_engine, create_sessionmaker
from app.responses import repository as items

ENCODING = "o200k_base"


@pytest.fixture(params=["postgres", "sqlite"])
async def store(
    request: pytest.FixtureRequest, database_url: str, sqlite_url: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url if request.param == "postgres" else sqlite_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


def message(n: int) -> dict[str, Any]:
    return {"id": ids.new_id(ids.MESSAGE), "type": "message", "role": "user", "content": f"m{n}"}


async def conversation_of(
    sessions: async_sessionmaker[AsyncSession],
    bodies: list[dict[str, Any]],
    counts: list[int] | None,
    encoding: str = ENCODING,
) -> str:
    conversation_id = ids.new_id(ids.CONVERSATION)
    async with sessions() as session, session.begin():
        row = {
            "id": conversation_id,
            "project_id": "proj_reads",
            "metadata_": {},
            "created_at": utcnow(),
        }
        await conversations.insert(session, row)
    await append_to(sessions, conversation_id, bodies, counts, encoding)
    return conversation_id


async def append_to(
    sessions: async_sessionmaker[AsyncSession],
    conversation_id: str,
    bodies: list[dict[str, Any]],
    counts: list[int] | None,
    encoding: str = ENCODING,
) -> None:
    """One append, as a turn or an items request makes it: items stored, then referenced."""
    now = utcnow()
    async with sessions() as session, session.begin():
        await items.insert_items(
            session,
            project_id="proj_reads",
            response_id=None,
            side=items.INPUT,
            bodies=bodies,
            created_at=now,
            token_counts=counts,
            token_encoding=encoding if counts is not None else None,
        )
        counted = [
            conversations.Counted(count, encoding if counts is not None else None, body["type"])
            for body, count in zip(bodies, counts or [None] * len(bodies), strict=True)
        ]
        await conversations.append(
            session, conversation_id, [body["id"] for body in bodies], counted
        )


async def chain_of(sessions: async_sessionmaker[AsyncSession], turns: int, tokens: int) -> str:
    """`turns` responses, each continuing the last, each with one input and one output item."""
    previous: str | None = None
    now = utcnow()
    for turn in range(turns):
        response_id = ids.new_id(ids.RESPONSE)
        async with sessions() as session, session.begin():
            await items.insert_response(
                session,
                {
                    "id": response_id,
                    "project_id": "proj_reads",
                    "status": "completed",
                    "model": "m",
                    "background": False,
                    "previous_response_id": previous,
                    "params": {},
                    "metadata": {},
                    "created_at": now,
                    "attempts": 1,
                },
            )
            for side in (items.INPUT, items.OUTPUT):
                await items.insert_items(
                    session,
                    project_id="proj_reads",
                    response_id=response_id,
                    side=side,
                    bodies=[message(turn * 2 + (side == items.OUTPUT))],
                    created_at=now,
                    token_counts=[tokens],
                    token_encoding=ENCODING,
                )
        previous = response_id
    assert previous is not None
    return previous


async def test_a_conversation_read_stops_at_the_budget(
    store: async_sessionmaker[AsyncSession],
) -> None:
    bodies = [message(n) for n in range(50)]
    conversation_id = await conversation_of(store, bodies, [10] * 50)
    async with store() as session:
        whole = await reads.conversation_items(session, conversation_id, ENCODING)
        cut = await reads.conversation_items(session, conversation_id, ENCODING, budget=95)
        nothing = await reads.conversation_items(session, conversation_id, ENCODING, budget=3)
    assert [b["content"] for b in whole.bodies] == [f"m{n}" for n in range(50)]
    assert whole.omitted_tokens == 0
    assert [b["content"] for b in cut.bodies] == [f"m{n}" for n in range(41, 50)]  # 9 x 10 <= 95
    assert cut.counts == [10] * 9
    assert cut.omitted_tokens == 410
    # Over budget even for one item: the newest comes back anyway, with the total.
    assert [b["content"] for b in nothing.bodies] == ["m49"]
    assert nothing.omitted_tokens == 490


async def test_a_chain_read_stops_at_the_budget(store: async_sessionmaker[AsyncSession]) -> None:
    newest = await chain_of(store, turns=30, tokens=7)
    async with store() as session:
        whole = await reads.chain_items(session, "proj_reads", newest, ENCODING)
        cut = await reads.chain_items(session, "proj_reads", newest, ENCODING, budget=30)
    assert len(whole.bodies) == 60
    assert [b["content"] for b in cut.bodies] == ["m56", "m57", "m58", "m59"]  # oldest first
    assert cut.omitted_tokens == 56 * 7


async def test_everything_is_read_when_the_cut_cannot_be_trusted(
    store: async_sessionmaker[AsyncSession],
) -> None:
    uncounted = await conversation_of(store, [message(n) for n in range(20)], None)
    other_encoding = await conversation_of(store, [message(n) for n in range(20)], [5] * 20, "x")
    compacted_bodies = [message(n) for n in range(19)]
    compacted_bodies.insert(5, {"id": ids.new_id(ids.COMPACTION), "type": "compaction"})
    compacted = await conversation_of(store, compacted_bodies, [5] * 20)
    async with store() as session:
        for conversation_id in (uncounted, other_encoding, compacted):
            read = await reads.conversation_items(session, conversation_id, ENCODING, budget=10)
            assert len(read.bodies) == 20
            assert read.omitted_tokens == 0


async def test_a_cut_never_starts_with_an_orphan_result(
    store: async_sessionmaker[AsyncSession],
) -> None:
    call = {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    output = {"id": "fco_1", "type": "function_call_output", "call_id": "c1", "output": "x"}
    bodies = [message(0), call, output, message(1)]
    conversation_id = await conversation_of(store, bodies, [10, 10, 10, 10])
    async with store() as session:
        cut = await history.conversation(
            session, "proj_reads", conversation_id, ids.new_id(ids.RESPONSE), utcnow(), 30.0,
            ENCODING, Cut(budget=25),
        )  # fmt: skip
    assert [b["id"] for b in cut.bodies] == [bodies[3]["id"]]  # the result went with its call
    assert cut.omitted_tokens == 30


async def test_a_call_the_new_input_answers_is_never_cut(
    store: async_sessionmaker[AsyncSession],
) -> None:
    call = {"id": "fc_2", "type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"}
    bodies = [message(0), call, message(1), message(2)]
    conversation_id = await conversation_of(store, bodies, [10, 10, 10, 10])
    async with store() as session:
        read = await history.conversation(
            session, "proj_reads", conversation_id, ids.new_id(ids.RESPONSE), utcnow(), 30.0,
            ENCODING, Cut(budget=20, pinned=frozenset({"c2"})),
        )  # fmt: skip
    assert len(read.bodies) == 4  # read whole: truncation keeps the call, as it always has
    assert read.omitted_tokens == 0


async def test_the_cut_follows_appends_and_removals(
    store: async_sessionmaker[AsyncSession],
) -> None:
    """The running counts continue across appends and are taken back by a removal, so the
    cut stays exact: what fits is the newest items whose counts add up to the budget."""
    bodies = [message(n) for n in range(30)]
    conversation_id = await conversation_of(store, bodies[:10], [10] * 10)
    await append_to(store, conversation_id, bodies[10:20], [10] * 10)
    await append_to(store, conversation_id, bodies[20:], [10] * 10)
    async with store() as session, session.begin():
        for removed in (bodies[0], bodies[25], bodies[27]):
            assert await conversations.remove_item(session, conversation_id, removed["id"])
    async with store() as session:
        whole = await reads.conversation_items(session, conversation_id, ENCODING)
        cut = await reads.conversation_items(session, conversation_id, ENCODING, budget=95)
    left = [n for n in range(30) if n not in (0, 25, 27)]
    assert [b["content"] for b in whole.bodies] == [f"m{n}" for n in left]
    assert whole.omitted_tokens == 0
    assert [b["content"] for b in cut.bodies] == [f"m{n}" for n in left[-9:]]
    assert cut.omitted_tokens == 10 * (len(left) - 9)


async def test_a_later_append_in_another_encoding_spoils_the_cut(
    store: async_sessionmaker[AsyncSession],
) -> None:
    conversation_id = await conversation_of(store, [message(n) for n in range(10)], [10] * 10)
    await append_to(store, conversation_id, [message(n) for n in range(10, 20)], [5] * 10, "x")
    async with store() as session:
        read = await reads.conversation_items(session, conversation_id, ENCODING, budget=30)
    assert len(read.bodies) == 20  # counts in two encodings do not add up: read it all
    assert read.omitted_tokens == 0


async def test_the_migration_gives_existing_conversations_their_running_counts(
    tmp_path: Path,
) -> None:
    """Rows written before revision 0010 get the running counts their items' counts give."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(migrate, url, "0009")
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    conversation_id = ids.new_id(ids.CONVERSATION)
    bodies = [message(n) for n in range(20)]
    async with sessions() as session, session.begin():
        await session.execute(
            sa.text(
                "INSERT INTO conversations (id, project_id, metadata, created_at, next_seq) "
                "VALUES (:id, 'proj_reads', '{}', :now, 20)"
            ),
            {"id": conversation_id, "now": utcnow()},
        )
        await items.insert_items(
            session, project_id="proj_reads", response_id=None, side=items.INPUT,
            bodies=bodies, created_at=utcnow(), token_counts=[10] * 20, token_encoding=ENCODING,
        )  # fmt: skip
        await session.execute(
            sa.text(
                "INSERT INTO conversation_items (conversation_id, seq, item_id, token_count, "
                "token_encoding, item_type) VALUES (:c, :seq, :item, 10, :encoding, 'message')"
            ),
            [
                {"c": conversation_id, "seq": n, "item": body["id"], "encoding": ENCODING}
                for n, body in enumerate(bodies)
            ],
        )
    await engine.dispose()
    await asyncio.to_thread(migrate, url, "head")
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            cut = await reads.conversation_items(session, conversation_id, ENCODING, budget=55)
        assert [b["content"] for b in cut.bodies] == [f"m{n}" for n in range(15, 20)]
        assert cut.omitted_tokens == 150
    finally:
        await engine.dispose()
