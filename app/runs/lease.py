"""Keeps a running response's lease fresh: its heartbeat, and its conversation's lock.

A response that is generating renews `responses.heartbeat_at` (and, when it runs on a
conversation, that conversation's lease) every third of the lease. If its process dies the
renewals stop, so the conversation lock lapses by itself within one lease, and a sweeper can
tell the row is orphaned. The renewals run beside the generation, never inside a transaction
that spans it.

Fencing: a renewal only applies while the row is in_progress *and* still at the run's own
attempt (`epoch`). A run learns it lost its lease — and `on_lost` stops it — when a renewal
finds the row no longer its own (cancelled, failed or re-queued by the sweeper, claimed again
by another worker), and also when its renewals have failed for half the lease (the
database did not answer): by then the sweeper may take the response over, and one response
must never be generated twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
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
    epoch: int | None = None,
) -> AsyncIterator[None]:
    """Renew while the body runs; `on_lost` is called once if the lease is lost (above).

    A run passes a callback that stops it: its response was cancelled, the sweeper gave it to
    another worker, or the database stayed out of reach for most of a lease.
    """
    # Most runs end before their first renewal is due: a timer costs them less than a task
    # started, parked and cancelled (≈ 2 % of a short create's CPU).
    loop = asyncio.get_running_loop()
    renewals: list[asyncio.Task[None]] = []
    since = time.monotonic()

    def begin() -> None:
        renewals.append(
            loop.create_task(
                _renew(sessions, response_id, conversation_id, lease_seconds, on_lost, epoch, since)
            )
        )

    first = loop.call_later(lease_seconds / 3, begin)
    try:
        yield
    finally:
        first.cancel()
        for task in renewals:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _renew(
    sessions: async_sessionmaker[AsyncSession],
    response_id: str,
    conversation_id: str | None,
    lease_seconds: float,
    on_lost: Callable[[], object] | None,
    epoch: int | None,
    renewed: float,
) -> None:
    """Renew now, then every third of the lease; `renewed` is when the lease was last fresh."""
    held = [ResponseRow.id == response_id, ResponseRow.status == "in_progress"]
    if epoch is not None:
        held.append(ResponseRow.attempts == epoch)
    while True:
        now = utcnow()
        try:
            async with asyncio.timeout(lease_seconds / 6), unit_of_work(sessions) as session:
                result = await session.execute(
                    sa.update(ResponseRow).where(*held).values(heartbeat_at=now)
                )
                if not result.rowcount:  # type: ignore[attr-defined]
                    _lost(response_id, "taken", on_lost)
                    return
                if conversation_id is not None:
                    until = now + timedelta(seconds=lease_seconds)
                    await conversations.renew_lease(session, conversation_id, response_id, until)
            renewed = time.monotonic()
        except Exception as exc:  # noqa: BLE001  (one missed renewal must not stop the run)
            log.warning(
                "lease renewal failed",
                extra={"response_id": response_id, "error_kind": type(exc).__name__},
            )
            if time.monotonic() - renewed >= lease_seconds / 2:
                _lost(response_id, "unrenewed", on_lost)
                return
        await asyncio.sleep(lease_seconds / 3)


def _lost(response_id: str, why: str, on_lost: Callable[[], object] | None) -> None:
    log.warning("lease lost; stopping the run", extra={"response_id": response_id, "status": why})
    if on_lost is not None:
        on_lost()
