"""SQLite's one writer: a process's write transactions take turns, in the order they came.

SQLite lets one transaction write at a time. Left to itself, a writer that finds the lock taken
sleeps in SQLite's busy handler and polls with growing sleeps (up to 100 ms each): under 20
concurrent creates a few waited a second while the median was 46 ms. Here a transaction's
first write (or DDL) first waits for this process's turn on an asyncio lock, then opens the
write transaction with BEGIN IMMEDIATE; the turn passes on when the connection goes back to
the pool, after its COMMIT or ROLLBACK — so the next writer starts the moment the last ends.

Reads before a unit of work's first write run outside its write transaction, each seeing the
newest committed data (as Postgres's READ COMMITTED does), and need no turn: WAL lets them
run beside the writer. Holding the turn from the first write only keeps it short (a create's
writes come at the end of its unit of work). Other processes on the same file are kept apart
by BEGIN IMMEDIATE and the busy timeout. Postgres needs none of this.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.util import await_only

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "ALTER", "DROP")
TURN_TIMEOUT_SECONDS = 30  # as SQLite's busy timeout: a turn never comes (a bug) → an error
_TURN = "rapport_write_turn"  # key of the held lock in the pooled connection's info

# One lock per engine and event loop (an asyncio lock belongs to the loop that first waits on
# it; tests run engines on several).
_LOCKS: weakref.WeakKeyDictionary[Engine, dict[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def take_turns(engine: Engine) -> None:
    """Make `engine`'s (a SQLite engine's) writers take turns. Its connections must have the
    driver's own transaction handling off (isolation_level None): BEGIN is issued here."""
    event.listen(engine, "before_cursor_execute", _before_statement)
    event.listen(engine.pool, "checkin", _give_back)
    event.listen(engine.pool, "invalidate", _give_back)  # a broken connection ends it too


def _before_statement(connection: Connection, cursor: Any, statement: str, *_rest: Any) -> None:
    if _TURN in connection.info or not statement.lstrip()[:7].upper().startswith(_WRITES):
        return
    lock = _lock_for(connection.engine)
    try:  # in SQLAlchemy's greenlet, await_only awaits on the event loop
        await_only(asyncio.wait_for(lock.acquire(), TURN_TIMEOUT_SECONDS))
    except TimeoutError:
        # As a pool with no connection to give: the store did not answer (a 503, app/outage.py).
        raise PoolTimeoutError(f"no SQLite write turn within {TURN_TIMEOUT_SECONDS} s") from None
    connection.info[_TURN] = lock
    # Take SQLite's write lock now: a transaction that reads first could otherwise not
    # upgrade once another process wrote (a busy snapshot, which no waiting resolves).
    cursor.execute("BEGIN IMMEDIATE")


def _give_back(_dbapi_connection: Any, record: Any, *_exception: Any) -> None:
    """Back in the pool, the transaction is over (committed or rolled back): next writer."""
    lock: asyncio.Lock | None = record.info.pop(_TURN, None)
    if lock is not None:
        lock.release()


def _lock_for(engine: Engine) -> asyncio.Lock:
    per_loop = _LOCKS.setdefault(engine, {})
    loop = asyncio.get_running_loop()
    lock = per_loop.get(loop)
    if lock is None:
        lock = per_loop[loop] = asyncio.Lock()
    return lock
