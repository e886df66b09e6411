"""The unit of work: the one way a transaction is opened and closed in Rapport.

Only the edge commits: services open a unit of work, repositories run statements inside it.
Transactions stay short; none spans an upstream call or a stream body.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import msgspec
from sqlalchemy import Executable, event
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app import outage
from app.db import direct, writer
from app.observability import tracing
from app.wire.codec import encoder

SQLITE_BUSY_SECONDS = 30  # how long a SQLite writer waits for another process's transaction


# Connections a Postgres pool keeps open; a process running N things at once asks for more.
POOL_SIZE = 20


def create_engine(database_url: str, pool_size: int = POOL_SIZE) -> AsyncEngine:
    """An engine tuned per backend: a real pool for Postgres, one writer for SQLite.

    The pool keeps `pool_size` connections and opens up to 20 more for peaks, closing those
    again when they come back: a worker running more jobs at once than the pool keeps opened
    and closed a connection on most jobs (an SSL probe, a login, a server process each),
    which cost it a quarter of its CPU."""
    json_options = {
        "json_serializer": lambda value: encoder.encode(value).decode(),
        "json_deserializer": _decode_json,
    }
    if database_url.startswith("sqlite"):
        engine = create_async_engine(
            database_url,
            connect_args={"timeout": SQLITE_BUSY_SECONDS},
            **json_options,
        )
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        writer.take_turns(engine.sync_engine)
        return engine
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=20,
        # No pre-ping: on asyncpg it costs three round trips per checkout (BEGIN, ping,
        # ROLLBACK), twice per create. A connection the server dropped fails one statement
        # and is then discarded by the pool; recycling keeps idle ones from going stale.
        pool_recycle=1800,
        **json_options,
    )


def _decode_json(text: str | bytes) -> object:
    return msgspec.json.decode(text)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.

    The driver's own transaction handling is turned off: app/db/writer.py begins each write
    transaction itself (BEGIN IMMEDIATE, one writer of this process at a time)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Commit on success, roll back on any exception, always return the connection.

    A store that goes away during COMMIT leaves the writes' fate unknown: that is raised as
    `CommitUncertain`, so no one answers "nothing was stored, retry" for it (app/outage.py).
    """
    with tracing.span("db.unit_of_work"):
        async with sessions() as session:
            await session.begin()
            yield session  # an exception here: closing the session rolls the transaction back
            try:
                await session.commit()
            except outage.UNREACHABLE as exc:
                if outage.is_unreachable(exc):
                    raise outage.CommitUncertain from exc
                raise


@asynccontextmanager
async def single_statements(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose every statement is its own transaction (Postgres autocommit).

    For work whose writes are single statements that stand alone (a conditional UPDATE that
    claims a row) and whose reads need no common snapshot: it spares the BEGIN and COMMIT round
    trips a unit of work costs, which on a busy worker's loop each waited a whole turn of it.
    The session takes a connection only when a read needs one: `write_value` sends a write
    that follows no read on a connection of its own, which costs half of the session's
    checkout. SQLite keeps its unit of work: its writers take turns per transaction
    (app/db/writer.py).
    """
    bind = sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql":
        async with unit_of_work(sessions) as session:
            yield session
        return
    with tracing.span("db.single_statements"):
        async with sessions(bind=_autocommitting(bind)) as session:
            # Its being here says the statements commit by themselves (`write_value`).
            session.info[_AUTOCOMMITTED] = bind
            yield session


def _autocommitting(engine: AsyncEngine) -> AsyncEngine:
    """`engine` with every connection it checks out in autocommit; the same pool."""
    found = _AUTOCOMMITTING.get(engine)
    if found is None:
        found = _AUTOCOMMITTING[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


_AUTOCOMMITTING: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()
_AUTOCOMMITTED = "rapport.autocommitted"


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def write_value(
    session: AsyncSession, statement: Executable, parameters: dict[str, Any]
) -> Any:
    """Run a write whose loss must not read as "nothing stored", and return the first column of
    its first row (None when it returns none). In `single_statements` the statement commits by
    itself, and goes straight to the driver (app/db/direct.py): on the connection the session
    holds, or on one of its own when the session holds none. A connection lost while it ran
    leaves its fate as unknown as a COMMIT cut short in a unit of work, and is raised as
    `CommitUncertain` likewise. Unless the connection was already known closed before the
    statement went out (a pooled connection the database dropped, as after its restart): then
    nothing was sent, and the client may retry."""
    engine: AsyncEngine | None = session.info.get(_AUTOCOMMITTED)
    if engine is not None:
        if not session.in_transaction():  # no read before it: the session holds no connection
            async with direct.checked_out(engine) as alone:
                return await _sent(alone, statement, parameters)
        held = direct.held_under(await session.connection())
        if held is not None:
            return await _sent(held, statement, parameters)
    result = await session.execute(statement, parameters)
    # An INSERT without RETURNING has no rows to take a value from.
    return result.scalar() if cast(CursorResult[Any], result).returns_rows else None


async def _sent(held: direct.Held, statement: Executable, parameters: dict[str, Any]) -> Any:
    # asyncpg tracks whether it saw the connection end: no round trip to ask it.
    sent_on_open = not held.driver.is_closed()
    try:
        return await direct.fetch_value(held, statement, parameters)
    except outage.UNREACHABLE as exc:
        if sent_on_open and outage.is_unreachable(exc):
            raise outage.CommitUncertain from exc
        raise
