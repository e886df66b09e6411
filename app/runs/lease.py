"""Keeps a running response's lease fresh: its heartbeat, and its conversation's lock.

A response that is generating renews `responses.heartbeat_at` (and, when it runs on a
conversation, that conversation's lease) every third of the lease. If its process dies the
renewals stop, so the conversation lock lapses by itself within one lease, and a sweeper can
tell the row is orphaned. The renewals run beside the generation, never inside a transaction
that spans it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations import repository as conversations
from app.db.base import utcnow
from app.db.models import ResponseRow
from app.db.session import unit_of_work

log = logging.getLogger("rapport.lease")


@contextlib.asynccontextmanager
async def kept_alive(
    sessions: async_sessionmaker[AsyncSession],
    response_id: str,
    conversation_id: str | None,
    lease_seconds: float,
    on_lost: Callable[[], object] | None = None,
) -> AsyncIterator[None]:
    """Renew while the body runs; `on_lost` is called if the row stops being in_progress.

    A background run passes a callback that cancels itself: its response was cancelled, or
    the sweeper gave it to another worker after missed heartbeats.
    """
    task = asyncio.create_task(
        _renew(sessions, response_id, conversation_id, lease_seconds, on_lost)
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _renew(
    sessions: async_sessionmaker[AsyncSession],
    response_id: str,
    conversation_id: str | None,
    lease_seconds: float,
    on_lost: Callable[[], object] | None,
) -> None:
    while True:
        await asyncio.sleep(lease_seconds / 3)
        now = utcnow()
        try:
            async with unit_of_work(sessions) as session:
                result = await session.execute(
                    sa.update(ResponseRow)
                    .where(ResponseRow.id == response_id, ResponseRow.status == "in_progress")
                    .values(heartbeat_at=now)
                )
                if not result.rowcount and on_lost is not None:  # type: ignore[attr-defined]
                    on_lost()
                    return
                if conversation_id is not None:
                    until = now + timedelta(seconds=lease_seconds)
                    await conversations.renew_lease(session, conversation_id, response_id, until)
        except Exception as exc:  # noqa: BLE001  (a missed renewal must not stop the generation)
            log.warning(
                "lease renewal failed",
                extra={"response_id": response_id, "error_kind": type(exc).__name__},
            )
