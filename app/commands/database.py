"""Sessions for one command, and the guard that keeps read-only commands from making a database.

SQLite creates a file on first connect, so `rapport keys list` run in the wrong folder used to
leave an empty `./rapport.db` behind and print nothing. Commands that only read (or change
what exists) now refuse when the file is not there, naming the path they looked at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import redact
from app.commands.failures import CommandError
from app.config import Settings

T = TypeVar("T")
Action = Callable[..., Awaitable[T]]


def require_existing_database(settings: Settings) -> None:
    if not settings.is_embedded_database:
        return
    path = redact.sqlite_path(settings.database_url)
    if path is not None and not path.exists():
        raise CommandError(
            f"no database at {path}: run this in the folder where you ran `rapport serve` "
            "or `rapport keys create`, or set RAPPORT_DATABASE_URL "
            f"(for this file: sqlite+aiosqlite:///{path})"
        )


def migrate_embedded(settings: Settings) -> str | None:
    """Bring the embedded database to the newest schema; says what it did, if anything."""
    from app.cli import migrate
    from app.db.session import create_engine
    from app.schema import inspect

    async def revision() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            return (await inspect(engine)).current
        finally:
            await engine.dispose()

    before = asyncio.run(revision())
    migrate(settings.database_url, "head")
    after = asyncio.run(revision())
    if before == after:
        return None
    return f"database migrated {before or 'from empty'} → {after}"


async def with_sessions(
    settings: Settings, action: Callable[..., Awaitable[T]], *args: Any, migrate: bool = True
) -> T:
    """Run `action(sessions, *args)` on a short-lived engine; the embedded database is migrated
    first unless `migrate` is false."""
    from app.cli import migrate as run_migrations
    from app.db.session import create_engine, create_sessionmaker

    if migrate and settings.is_embedded_database:
        await asyncio.to_thread(run_migrations, settings.database_url, "head")
    engine = create_engine(settings.database_url)
    try:
        sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
        return await action(sessions, *args)
    finally:
        await engine.dispose()


async def with_existing_sessions(
    settings: Settings, action: Callable[..., Awaitable[T]], *args: Any
) -> T:
    """As `with_sessions`, for commands that must not create a database."""
    require_existing_database(settings)
    return await with_sessions(settings, action, *args)
