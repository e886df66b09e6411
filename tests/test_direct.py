"""Statements sent straight to asyncpg (app/db/direct.py) behave as through SQLAlchemy: the same
parameters processed the same way, the same errors, listeners still see them, and a connection
lost under one never comes back from the pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import direct
from app.db.session import create_engine, create_sessionmaker, single_statements, write_value
from app.outage import CommitUncertain, is_unreachable
from tests.harness import StatementCounter

# A JSON parameter, one of the statement's own (`literal(5)`), and an integer.
MIXED = sa.select(
    sa.func.concat(
        sa.cast(sa.bindparam("doc", type_=sa.JSON), sa.Text),
        "|",
        sa.literal(5) + sa.bindparam("n", type_=sa.Integer),
    )
)
BACKEND = sa.select(sa.func.pg_backend_pid())
SLEEP = sa.select(sa.func.pg_sleep(sa.bindparam("seconds", type_=sa.Float)))
DIVIDE = sa.select(sa.literal(1) / sa.bindparam("zero", type_=sa.Integer))


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A pool that keeps one connection, so which one a session gets is plain to see."""
    engine = create_engine(database_url, pool_size=1)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def test_parameters_are_processed_as_sqlalchemy_would(
    one_connection: async_sessionmaker[AsyncSession],
) -> None:
    engine = one_connection.kw["bind"]
    with StatementCounter(engine.sync_engine) as counter:
        async with single_statements(one_connection) as session:
            value = await write_value(session, MIXED, {"doc": {"a": [1, "b"]}, "n": 2})
    assert value == '{"a":[1,"b"]}|7'
    [sent] = counter.statements
    assert sent == direct.compiled_for(MIXED, engine.dialect).sql  # what went to the driver
    async with one_connection() as session:  # the same through SQLAlchemy, as a check
        assert await session.scalar(MIXED, {"doc": {"a": [1, "b"]}, "n": 2}) == value


async def test_a_refused_statement_raises_what_sqlalchemy_raises_and_the_connection_stays(
    one_connection: async_sessionmaker[AsyncSession],
) -> None:
    async with single_statements(one_connection) as session:
        before = await write_value(session, BACKEND, {})
        with pytest.raises(DataError):
            await write_value(session, DIVIDE, {"zero": 0})
        assert await write_value(session, BACKEND, {}) == before


async def test_a_lost_connection_is_an_outage_and_never_given_out_again(
    one_connection: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    async with single_statements(one_connection) as session:
        doomed = await write_value(session, BACKEND, {})
    admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", doomed)
    finally:
        await admin.close()
    async with single_statements(one_connection) as session:
        # The pool gave out the connection the server just ended: whether asyncpg saw it end
        # before the write (so nothing was sent, OperationalError) or not (CommitUncertain)
        # is a race; either is an outage (app/outage.py).
        with pytest.raises((OperationalError, CommitUncertain)) as caught:
            await write_value(session, BACKEND, {})
        assert is_unreachable(caught.value)
    async with single_statements(one_connection) as session:
        fresh = await write_value(session, BACKEND, {})
    assert fresh != doomed


async def test_a_statement_cancelled_midway_leaves_its_connection_usable(
    one_connection: async_sessionmaker[AsyncSession],
) -> None:
    """A request given up (its task cancelled) while its statement runs: the pool's one
    connection answers the next session at once, the statement cancelled on the server too."""
    async with single_statements(one_connection) as session:
        before = await write_value(session, BACKEND, {})

    async def slow() -> None:
        async with single_statements(one_connection) as session:
            await write_value(session, SLEEP, {"seconds": 30.0})

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5), single_statements(one_connection) as session:
        assert await write_value(session, BACKEND, {}) == before


async def test_a_write_that_follows_no_read_holds_a_connection_only_while_it_runs(
    one_connection: async_sessionmaker[AsyncSession],
) -> None:
    """A create's writes: the session never takes a connection of its own, and the one the
    write ran on is back in the pool before the session ends."""
    pool = one_connection.kw["bind"].sync_engine.pool
    async with single_statements(one_connection) as session:
        first = await write_value(session, BACKEND, {})
        assert pool.checkedout() == 0
        assert not session.in_transaction()
        assert await write_value(session, BACKEND, {}) == first  # the pool's one connection


async def test_a_write_after_a_read_runs_on_the_connection_the_session_holds(
    one_connection: async_sessionmaker[AsyncSession],
) -> None:
    """Never a second connection for one session: with every connection taken, a second
    checkout would wait for one that only this session can give back."""
    pool = one_connection.kw["bind"].sync_engine.pool
    async with single_statements(one_connection) as session:
        read = await session.scalar(BACKEND)
        assert pool.checkedout() == 1
        assert await write_value(session, BACKEND, {}) == read
        assert pool.checkedout() == 1
        # Autocommit: the write stands whatever becomes of the session.
        await write_value(session, sa.text("CREATE TEMP TABLE IF NOT EXISTS seen (n int)"), {})
        await write_value(session, sa.text("INSERT INTO seen VALUES (1)"), {})
        await session.rollback()
    async with single_statements(one_connection) as session:
        assert await session.scalar(sa.text("SELECT count(*) FROM seen")) == 1
        await write_value(session, sa.text("DROP TABLE seen"), {})
