"""SQLite's one writer: the units of work of one process take turns, in the order they came.

SQLite lets one transaction write at a time. Left to itself, a writer that finds the lock taken
sleeps in SQLite's busy handler and polls, with growing sleeps (up to 100 ms each), so under
20 concurrent creates a few waited a second while the median was 46 ms. Waiting on an
asyncio lock instead hands the database to the next unit of work the moment the last one
commits, and keeps the waiting off the driver's threads. Other processes on the same file
(`rapport keys create` while serving) are still kept apart by BEGIN IMMEDIATE and the busy
timeout (app/db/session.py). Postgres needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# One lock per engine and event loop (an asyncio lock belongs to the loop that first waits on
# it; tests run engines on several).
_TURNS: weakref.WeakKeyDictionary[Engine, dict[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def writer_turn(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Hold this process's SQLite write turn for the block; a no-op on other databases."""
    lock = _lock_for(sessions.kw.get("bind"))
    if lock is None:
        yield
        return
    async with lock:
        yield


def _lock_for(bind: Any) -> asyncio.Lock | None:
    if bind is None or bind.dialect.name != "sqlite":
        return None
    per_loop = _TURNS.setdefault(bind.sync_engine, {})
    loop = asyncio.get_running_loop()
    lock = per_loop.get(loop)
    if lock is None:
        lock = per_loop[loop] = asyncio.Lock()
    return lock
