"""Statements a hot path sends straight to asyncpg, compiled once.

A create runs two statements (app/responses/together.py) whose SQL never changes. Through
`AsyncSession.execute` each cost ≈ 0.15 ms of CPU beyond asyncpg's own work: the statement
tree's cache key walked anew, each parameter processed through the compiled cache, a result
object built, a greenlet switched to. Compiled once here, with the bind processors SQLAlchemy
itself would apply, the statement goes to the driver as positional arguments and reuses the
prepared statement asyncpg caches per connection.

Only in autocommit (`single_statements`): in a unit of work the transaction begins with the
session's first SQLAlchemy statement, and a statement sent around it would not be part of it.
The statement runs on the connection the session holds, or, when it holds none (a create's
writes follow no read), on one checked out of the pool for it alone (`checked_out`), which
spares the session's own checkout: ≈ 0.15 ms of CPU per write, half of what the session
costs. What SQLAlchemy does around a statement still happens: `before_cursor_execute`
listeners see it (the tests count statements so), and a connection lost under it is
invalidated, so the pool never gives it out again, and its errors are raised as the SQLAlchemy
errors they would have been (`OperationalError` for a lost connection, the one every caller's
outage handling knows; `IntegrityError` for a broken constraint).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Executable
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DatabaseError, DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import greenlet_spawn

# What says the connection itself failed, as opposed to the statement; so does a connection
# asyncpg closed on the error (the server ending it, as at its shutdown).
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
    TimeoutError,
)


class CompiledStatement:
    """One statement as asyncpg takes it: its SQL with `$n` placeholders, and how to turn a
    dict of parameters into the positional arguments, processed as SQLAlchemy would."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql: str = compiled.string
        if "POSTCOMPILE" in self.sql:
            raise ValueError("a statement with expanding parameters is compiled per execution")
        self._names: tuple[str, ...] = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in self._names]
        self._processors: tuple[Callable[[Any], Any] | None, ...] = tuple(
            dialect.type_descriptor(bind.type).bind_processor(dialect) for bind in binds
        )
        # The values a statement carries itself (`column == 5` binds an anonymous parameter).
        self._carried = {
            name: bind.effective_value
            for name, bind in zip(self._names, binds, strict=True)
            if not bind.required
        }

    def arguments(self, parameters: dict[str, Any]) -> tuple[Any, ...]:
        values = (
            parameters[name] if name in parameters else self._carried[name] for name in self._names
        )
        return tuple(
            value if process is None else process(value)
            for value, process in zip(values, self._processors, strict=True)
        )


_COMPILED: dict[int, tuple[Executable, CompiledStatement]] = {}
# Statements built afresh per call would each add one: past this many, start over.
_MOST_COMPILED = 256


def compiled_for(statement: Executable, dialect: Dialect) -> CompiledStatement:
    """Statements are module-level constants (or cached per column set), so one compilation
    each serves the process; the statement is kept beside it so its id stays its own."""
    found = _COMPILED.get(id(statement))
    if found is None or found[0] is not statement:
        if len(_COMPILED) >= _MOST_COMPILED:
            _COMPILED.clear()
        found = _COMPILED[id(statement)] = (statement, CompiledStatement(statement, dialect))
    return found[1]


class Held(NamedTuple):
    """A driver connection checked out of the pool, with what SQLAlchemy keeps around it: the
    engine whose listeners see each statement, the SQLAlchemy connection over it (None for one
    checked out alone) and how to take it out of the pool for good."""

    dialect: Dialect
    engine: Engine
    connection: Connection | None
    driver: asyncpg.Connection
    invalidate: Callable[[BaseException], Awaitable[None]]


def held_under(connection: AsyncConnection) -> Held | None:
    """The driver connection under `connection`, which is in autocommit; None when it was
    invalidated (SQLAlchemy's own path reconnects it)."""
    sync = connection.sync_connection
    if sync is None or sync.invalidated:
        return None
    driver = sync.connection.driver_connection
    return Held(connection.dialect, connection.sync_engine, sync, driver, connection.invalidate)


@asynccontextmanager
async def checked_out(engine: AsyncEngine) -> AsyncIterator[Held]:
    """A connection of `engine`'s pool for one statement, given back after it. It is used
    outside any transaction: asyncpg runs each statement as its own. Given back through the
    pool's own checkin, which rolls back nothing here (no transaction was begun on it)."""
    pooled = await engine.raw_connection()

    async def invalidate(exc: BaseException) -> None:
        await greenlet_spawn(pooled.invalidate, exc)

    try:
        yield Held(engine.dialect, engine.sync_engine, None, pooled.driver_connection, invalidate)
    finally:
        await greenlet_spawn(pooled.close)


async def fetch_value(held: Held, statement: Executable, parameters: dict[str, Any]) -> Any:
    """The first column of the statement's first row (None when it returns none)."""
    compiled = compiled_for(statement, held.dialect)
    arguments = compiled.arguments(parameters)
    dispatch = held.engine.dispatch
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(held.connection, None, compiled.sql, arguments, None, False)
    driver = held.driver
    try:
        return await driver.fetchval(compiled.sql, *arguments)
    except Exception as exc:
        if isinstance(exc, _CONNECTION_LOST) or driver.is_closed():
            await held.invalidate(exc)
            raise OperationalError(compiled.sql, None, exc) from exc
        if isinstance(exc, asyncpg.PostgresError):
            raise _as_sqlalchemy(exc)(compiled.sql, None, exc) from exc
        raise


def _as_sqlalchemy(exc: Exception) -> type[DBAPIError]:
    """The class SQLAlchemy raises for a statement the database refused."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError
    if isinstance(exc, asyncpg.DataError):
        return DataError
    return DatabaseError
