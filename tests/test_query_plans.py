"""The context reads' plans stay index-driven whatever the planner knows of the tables.

A fresh deployment's tables are never analyzed until autovacuum gets round to them (and never,
where it is off): the chain and conversation reads must not need statistics to be planned
well. Each state below is a database of its own with realistic row counts, filled with SQL;
the statements are the ones the history functions issue, captured as they run, and EXPLAIN
shows how Postgres would run them. A plan's shape is what is asserted, never a timing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli import migrate
from app.context import history
from app.context.history import Cut
from app.db.base import utcnow
from app.db.session import create_engine, create_sessionmaker
from tests.harness import postgres_database

PROJECT = "proj_plans"
ENCODING = "o200k_base"
TOKENS = 30  # each item's cached count
CHAINS, DEPTH = 3, 1_000  # 3,000 responses, 6,000 of their items
BIG, SMALL, SMALL_SIZE = 10_000, 200, 100  # conversations: one big, 200 of a hundred
WATCHED = frozenset({"items", "responses", "conversation_items"})
HEAD = f"resp_plan_{CHAINS * DEPTH - 1}"  # the newest turn of the last chain
# The middle chain began before migration 0011: no running counts, so its read walks it whole.
UNCOUNTED_HEAD = f"resp_plan_{2 * DEPTH - 1}"


def libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def fill(url: str) -> None:
    """Chains of responses with an input and an output item each, and conversations, inserted
    set-wise (seconds, not the minutes the API would take), with the running counts a real
    append keeps. Autovacuum is turned off on these tables so no statistics appear meanwhile."""
    connection = await asyncpg.connect(libpq(url))
    try:
        for table in ("responses", "items", "conversations", "conversation_items"):
            await connection.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        await connection.execute(
            "INSERT INTO responses (id, project_id, status, model, background, "
            "previous_response_id, params, metadata, created_at, attempts, "
            "chain_tokens, chain_encoding) "
            "SELECT 'resp_plan_' || g, $1, 'completed', 'm', false, "
            "CASE WHEN g % $2 = 0 THEN NULL ELSE 'resp_plan_' || (g - 1) END, "
            "'{}', '{}', now(), 1, "
            "CASE WHEN g / $2 <> 1 THEN (g % $2 + 1) * 2 * $4::bigint END, "
            "CASE WHEN g / $2 <> 1 THEN $5 END FROM generate_series(0, $3 - 1) AS g",
            PROJECT,
            DEPTH,
            CHAINS * DEPTH,
            TOKENS,
            ENCODING,
        )
        await connection.execute(
            "INSERT INTO items (id, project_id, response_id, side, position, type, body, "
            "token_count, token_encoding, created_at) "
            "SELECT 'msg_plan_' || g || '_' || side, $1, 'resp_plan_' || g, side, 0, 'message', "
            "json_build_object('id', 'msg_plan_' || g || '_' || side, 'type', 'message', "
            "'role', CASE side WHEN 'input' THEN 'user' ELSE 'assistant' END, "
            "'content', 'turn ' || g), $2, $3, now() "
            "FROM generate_series(0, $4 - 1) AS g, (VALUES ('input'), ('output')) AS s(side)",
            PROJECT,
            TOKENS,
            ENCODING,
            CHAINS * DEPTH,
        )
        conversations = [("conv_plan_big", BIG)]
        conversations += [(f"conv_plan_{n}", SMALL_SIZE) for n in range(SMALL)]
        for conversation_id, size in conversations:
            await fill_conversation(connection, conversation_id, size)
    finally:
        await connection.close()


async def fill_conversation(
    connection: asyncpg.Connection, conversation_id: str, size: int
) -> None:
    await connection.execute(
        "INSERT INTO conversations (id, project_id, metadata, created_at, next_seq, "
        "tokens_total, token_encoding, uncountable_items) "
        "VALUES ($1, $2, '{}', now(), $3::int, $3::int * $4::int, $5, 0)",
        conversation_id,
        PROJECT,
        size,
        TOKENS,
        ENCODING,
    )
    await connection.execute(
        "INSERT INTO items (id, project_id, response_id, side, position, type, body, "
        "token_count, token_encoding, created_at) "
        "SELECT $1 || '_' || n, $2, NULL, 'input', n, 'message', json_build_object('id', "
        "$1 || '_' || n, 'type', 'message', 'role', 'user', 'content', 'item ' || n), "
        "$3, $4, now() FROM generate_series(0, $5 - 1) AS n",
        f"msg_{conversation_id}",
        PROJECT,
        TOKENS,
        ENCODING,
        size,
    )
    await connection.execute(
        "INSERT INTO conversation_items (conversation_id, seq, item_id, token_count, "
        "token_encoding, item_type, tokens_before) "
        "SELECT $1, n, $2 || '_' || n, $3, $4, 'message', n * $3 "
        "FROM generate_series(0, $5 - 1) AS n",
        conversation_id,
        f"msg_{conversation_id}",
        TOKENS,
        ENCODING,
        size,
    )


async def analyze(url: str) -> None:
    connection = await asyncpg.connect(libpq(url))
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def seed_a_little(url: str) -> None:
    """A few rows in each table, as a deployment has early on."""
    connection = await asyncpg.connect(libpq(url))
    try:
        await fill_conversation(connection, "conv_plan_seed", 10)
        await connection.execute(
            "INSERT INTO responses (id, project_id, status, model, background, params, "
            "metadata, created_at, attempts) "
            "VALUES ('resp_plan_seed', $1, 'completed', 'm', false, '{}', '{}', now(), 1)",
            PROJECT,
        )
    finally:
        await connection.close()


STATES = ("never analyzed", "analyzed small", "analyzed full")


@pytest.fixture(scope="module", params=STATES)
def state(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def database_in(state: str) -> Iterator[str]:
    """never analyzed: a new deployment (its migrations found nothing to analyze), filled;
    analyzed small: `rapport db upgrade` run again once a few rows were in, then filled;
    analyzed full: statistics of the full tables, as autovacuum or an operator leaves them."""
    with postgres_database() as url:
        if state == "analyzed small":
            asyncio.run(seed_a_little(url))
            migrate(url, "head")
        asyncio.run(fill(url))
        if state == "analyzed full":
            asyncio.run(analyze(url))
        yield url


@pytest.fixture(scope="module")
def filled(state: str) -> Iterator[str]:
    with database_in(state) as url:
        yield url


@pytest.fixture
async def sessions(filled: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(filled)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def captured(
    sessions: async_sessionmaker[AsyncSession], read: Any
) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements (and their parameters) `read(session)` runs, in a rolled-back
    transaction: the conversation read takes the conversation's lock."""
    statements: list[tuple[str, tuple[Any, ...]]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        statements.append((statement, tuple(parameters or ())))

    async with sessions() as session:
        sync_engine = session.get_bind()
        event.listen(sync_engine, "before_cursor_execute", record)
        try:
            async with session.begin():
                await read(session)
                await session.rollback()
        finally:
            event.remove(sync_engine, "before_cursor_execute", record)
    return statements


async def plans(url: str, statements: list[tuple[str, tuple[Any, ...]]]) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(libpq(url))
    try:
        found = []
        for statement, parameters in statements:
            answer = await connection.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *parameters)
            found.append(json.loads(answer)[0]["Plan"])
        return found
    finally:
        await connection.close()


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def per_row_subplans(plan: dict[str, Any], once: bool = False) -> Iterator[str]:
    """SubPlans that run once per row of their parent (those under an InitPlan run once)."""
    relation = plan.get("Parent Relationship")
    once = once or relation == "InitPlan"
    if relation == "SubPlan" and not once:
        yield plan.get("Subplan Name", "SubPlan")
    for child in plan.get("Plans", []):
        yield from per_row_subplans(child, once)


def scans(found: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(tables read by a sequential scan, indexes used) over all the plans."""
    sequential, indexes = set(), set()
    for plan in found:
        for node in nodes(plan):
            if node["Node Type"] == "Seq Scan":
                sequential.add(node["Relation Name"])
            if "Index Name" in node:
                indexes.add(node["Index Name"])
    return sequential, indexes


def a_turn_on(conversation_id: str, budget: int | None) -> Any:
    cut = Cut(budget=budget) if budget is not None else None
    return lambda session: history.conversation(
        session, PROJECT, conversation_id, "resp_plan_new", utcnow(), 30.0, ENCODING, cut
    )


def a_turn_after(newest: str, budget: int | None) -> Any:
    cut = Cut(budget=budget) if budget is not None else None
    return lambda session: history.chain(session, PROJECT, newest, ENCODING, cut)


@pytest.mark.parametrize("head", [HEAD, UNCOUNTED_HEAD], ids=["running counts", "none"])
@pytest.mark.parametrize("budget", [3_000, None], ids=["cut to a window", "whole"])
async def test_a_chain_read_is_index_driven(
    filled: str, sessions: async_sessionmaker[AsyncSession], budget: int | None, head: str
) -> None:
    statements = await captured(sessions, a_turn_after(head, budget))
    assert len(statements) == 2  # the head row, then one read at depth 1,000
    sequential, indexes = scans(await plans(filled, statements))
    assert not sequential & WATCHED, f"sequential scans on {sequential & WATCHED}"
    assert {"pk_responses", "uq_items_response_side_position"} <= indexes


@pytest.mark.parametrize("budget", [3_000, None], ids=["cut to a window", "whole"])
async def test_a_conversation_read_is_index_driven(
    state: str, filled: str, sessions: async_sessionmaker[AsyncSession], budget: int | None
) -> None:
    statements = await captured(sessions, a_turn_on("conv_plan_big", budget))
    assert len(statements) == 3  # the conversation, its lock, one read of its items
    found = await plans(filled, statements)
    sequential, indexes = scans(found)
    watched, needed = WATCHED, {"pk_conversation_items", "pk_items"}
    if budget is None and state == "analyzed full":
        # Knowing this conversation is a third of the table, Postgres rightly reads it in
        # one pass; the bodies still come by primary key, never by hashing all of `items`.
        watched, needed = WATCHED - {"conversation_items"}, {"pk_items"}
    assert not sequential & watched, f"sequential scans on {sequential & watched}"
    assert needed <= indexes
    # Where the window starts is found once, not once per item (stale statistics once put
    # the walk inside the loop over the conversation's items).
    assert [name for plan in found for name in per_row_subplans(plan)] == []


async def test_the_reads_return_what_the_plans_were_asked_about(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The data is what the plans were judged on: the cut reads what fits, from the right end."""
    async with sessions() as session, session.begin():
        chain = await a_turn_after(HEAD, 3_000)(session)
        turn = await a_turn_on("conv_plan_big", 3_000)(session)
        await session.rollback()
    assert len(chain.bodies) == 3_000 // TOKENS
    assert chain.bodies[-1]["content"] == f"turn {CHAINS * DEPTH - 1}"
    assert [b["content"] for b in turn.bodies][-1] == f"item {BIG - 1}"
    assert len(turn.bodies) == 3_000 // TOKENS
    assert turn.omitted_tokens == (BIG - len(turn.bodies)) * TOKENS


async def walked(url: str, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
    """How many responses the chain read's recursive walk visited (EXPLAIN ANALYZE)."""
    connection = await asyncpg.connect(libpq(url))
    try:
        statement, parameters = statements[-1]
        answer = await connection.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *parameters
        )
    finally:
        await connection.close()
    plan = json.loads(answer)[0]["Plan"]
    unions = [node for node in nodes(plan) if node["Node Type"] == "Recursive Union"]
    assert len(unions) == 1
    return int(unions[0]["Actual Rows"])


async def test_a_chain_walk_stops_at_the_window(
    filled: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """With running counts the walk visits what fits (3,000 tokens: 50 turns, and the one
    that no longer fits); without them, and without a budget, every ancestor."""
    turns_that_fit = 3_000 // (2 * TOKENS)
    assert await walked(filled, await captured(sessions, a_turn_after(HEAD, 3_000))) in (
        turns_that_fit,
        turns_that_fit + 1,
    )
    assert await walked(filled, await captured(sessions, a_turn_after(HEAD, None))) == DEPTH
    uncounted = await captured(sessions, a_turn_after(UNCOUNTED_HEAD, 3_000))
    assert await walked(filled, uncounted) == DEPTH


@pytest.mark.parametrize("budget", [3_000, 3_010, 59, 0])
async def test_a_walk_stopped_by_counts_reads_what_a_whole_walk_would(
    sessions: async_sessionmaker[AsyncSession], budget: int
) -> None:
    """The same items and the same tokens left out, by running counts or without them."""
    async with sessions() as session, session.begin():
        fast = await a_turn_after(HEAD, budget)(session)
        await session.execute(
            sa.text("UPDATE responses SET chain_tokens = NULL WHERE id = :id"), {"id": HEAD}
        )
        session.expunge_all()
        slow = await a_turn_after(HEAD, budget)(session)
        await session.rollback()
    assert fast.bodies == slow.bodies
    assert fast.counts == slow.counts
    assert fast.omitted_tokens == slow.omitted_tokens > 0


async def test_migrations_leave_statistics_behind(state: str, filled: str) -> None:
    """Migrations ANALYZE the tables that hold rows and leave empty ones never analyzed
    (reltuples -1: Postgres then assumes at least 10 pages and plans index lookups)."""
    connection = await asyncpg.connect(libpq(filled))
    try:
        rows = await connection.fetch(
            "SELECT relname, reltuples FROM pg_class WHERE relname = ANY($1::text[])",
            sorted(WATCHED),
        )
    finally:
        await connection.close()
    tuples = {row["relname"]: row["reltuples"] for row in rows}
    assert set(tuples) == WATCHED
    if state == "never analyzed":
        assert set(tuples.values()) == {-1.0}, tuples
    elif state == "analyzed small":  # the seed's rows, counted when migrate ran again
        assert all(0 < count <= 20 for count in tuples.values()), tuples
    else:
        assert all(count > 1_000 for count in tuples.values()), tuples
