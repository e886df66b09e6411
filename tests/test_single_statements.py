"""`single_statements`: on Postgres each statement commits by itself (no BEGIN/COMMIT round
trips for a worker's claim); SQLite keeps its unit of work."""

from __future__ import annotations

import secrets
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.session import create_engine, create_sessionmaker, single_statements


async def _table(sessions: async_sessionmaker[AsyncSession]) -> str:
    name = f"single_statements_{secrets.token_hex(4)}"
    async with sessions() as session, session.begin():
        await session.execute(sa.text(f"CREATE TABLE {name} (n INTEGER)"))
    return name


async def test_on_postgres_a_write_is_committed_before_the_block_ends(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    table = await _table(sessions)
    try:
        async with single_statements(sessions) as session:
            await session.execute(sa.text(f"INSERT INTO {table} VALUES (1)"))
            async with sessions() as other:  # another connection sees it at once
                assert await other.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 1
        # The connection goes back to the pool with transactions on again: an uncommitted
        # write is nobody else's to see.
        for _ in range(3):  # the pool hands the same connection back first
            async with sessions() as session:
                await session.execute(sa.text(f"INSERT INTO {table} VALUES (2)"))
                async with sessions() as other:
                    assert await other.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 1
    finally:
        async with sessions() as session, session.begin():
            await session.execute(sa.text(f"DROP TABLE {table}"))


async def test_on_sqlite_it_is_a_unit_of_work(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'single.db'}")
    sessions = create_sessionmaker(engine)
    try:
        table = await _table(sessions)
        try:
            async with single_statements(sessions) as session:
                await session.execute(sa.text(f"INSERT INTO {table} VALUES (1)"))
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        async with sessions() as session:
            assert await session.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 0
        async with single_statements(sessions) as session:
            await session.execute(sa.text(f"INSERT INTO {table} VALUES (2)"))
        async with sessions() as session:
            assert await session.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 1
    finally:
        await engine.dispose()
