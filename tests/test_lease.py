"""A running response's lease (app/runs/lease.py): renewed every third of the lease while the
run lasts, not at all for a run that ends sooner, and lost, stopping the run, once the row is
no longer the run's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.models import ResponseRow
from app.db.session import create_engine, create_sessionmaker, unit_of_work
from app.responses import repository
from app.runs.lease import kept_alive
from tests.conftest import Project
from tests.harness import postgres_database
from tests.test_together import new_response

LEASE = 0.6  # renewals every 0.2 s


@pytest.fixture(scope="module")
def lease_database_url() -> Iterator[str]:
    """A database of this module's own: its rows start with a stale heartbeat, which the
    session server's in-process sweeper, on the shared database, would settle from under the
    lease being tested."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
async def sessions(lease_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The conftest's `project` makes its projects here too."""
    engine = create_engine(lease_database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def running(sessions: async_sessionmaker[AsyncSession], project: Project) -> str:
    """An in_progress response at attempt 1 whose heartbeat is a minute old."""
    values: dict[str, Any] = new_response(project.project_id)
    values["heartbeat_at"] = utcnow() - timedelta(minutes=1)
    async with unit_of_work(sessions) as session:
        await repository.insert_response(session, values)
    return str(values["id"])


async def heartbeat(sessions: async_sessionmaker[AsyncSession], response_id: str) -> datetime:
    async with sessions() as session:
        found: datetime = await session.scalar(
            sa.select(ResponseRow.heartbeat_at).where(ResponseRow.id == response_id)
        )
    return found


async def test_a_long_run_keeps_its_heartbeat_fresh(
    sessions: async_sessionmaker[AsyncSession], project: Project
) -> None:
    response_id = await running(sessions, project)
    stale = await heartbeat(sessions, response_id)
    lost: list[str] = []
    async with kept_alive(sessions, response_id, None, LEASE, lambda: lost.append("lost"), 1):
        await asyncio.sleep(LEASE / 3 + 0.1)
        first = await heartbeat(sessions, response_id)
        await asyncio.sleep(LEASE / 3)
        second = await heartbeat(sessions, response_id)
    assert stale < first < second
    assert lost == []


async def test_a_run_shorter_than_a_third_of_the_lease_renews_nothing_and_leaves_nothing(
    sessions: async_sessionmaker[AsyncSession], project: Project
) -> None:
    response_id = await running(sessions, project)
    stale = await heartbeat(sessions, response_id)
    tasks_before = len(asyncio.all_tasks())
    async with kept_alive(sessions, response_id, None, LEASE, None, 1):
        await asyncio.sleep(0.01)
    await asyncio.sleep(LEASE / 3 + 0.1)  # past when the first renewal would have been due
    assert await heartbeat(sessions, response_id) == stale
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_row_no_longer_the_runs_own_loses_the_lease(
    sessions: async_sessionmaker[AsyncSession], project: Project
) -> None:
    response_id = await running(sessions, project)
    async with unit_of_work(sessions) as session:  # the sweeper gave it to attempt 2
        await session.execute(
            sa.update(ResponseRow).where(ResponseRow.id == response_id).values(attempts=2)
        )
    lost = asyncio.Event()
    async with kept_alive(sessions, response_id, None, LEASE, lost.set, 1):
        await asyncio.wait_for(lost.wait(), LEASE)
    assert lost.is_set()
