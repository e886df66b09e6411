"""Repairs what crashes and lost queues leave behind, so every response reaches an ending.

    queued, untouched for requeue_after     → enqueued again (the queue lost it, or never got it)
    in_progress, heartbeat older than lease → background: queued again while attempts remain,
                                              else failed; foreground: failed (its client is gone)

Every repair is a conditional UPDATE on the stale state, so any number of sweepers (one per
worker, plus the embedded server) can run at once without doing a repair twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations import repository as conversations
from app.db.base import utcnow
from app.db.models import ResponseRow
from app.db.session import unit_of_work
from app.idempotency import repository as idempotency_keys
from app.responses import convert
from app.runs.event_log import EventLogClosed
from app.runtime import Runtime

log = logging.getLogger("rapport.sweeper")

BATCH = 200
GAVE_UP = "The run of this response stopped {attempts} times without finishing; giving up."
ORPHANED = "The server handling this response stopped before the model finished."
IDEMPOTENCY_TTL = timedelta(hours=24)


async def sweep_once(runtime: Runtime) -> dict[str, int]:
    requeued = await _requeue_forgotten(runtime)
    retried, failed = await _settle_stale(runtime)
    await purge_idempotency_keys(runtime.sessions)
    if requeued or retried or failed:
        log.info(f"swept: {requeued} requeued, {retried} retried, {failed} failed")
    return {"requeued": requeued, "retried": retried, "failed": failed}


async def sweep_forever(runtime: Runtime, every_seconds: float | None = None) -> None:
    interval = every_seconds or max(0.5, runtime.settings.requeue_after_seconds / 3)
    while True:
        with contextlib.suppress(Exception):  # a failed sweep is retried at the next tick
            await sweep_once(runtime)
        await asyncio.sleep(interval)


async def purge_idempotency_keys(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Idempotency keys live 24 h (app/idempotency/guard.py); an expired one is only garbage."""
    async with unit_of_work(sessions) as session:
        await idempotency_keys.purge_expired(session, utcnow() - IDEMPOTENCY_TTL)


async def _requeue_forgotten(runtime: Runtime) -> int:
    now = utcnow()
    cutoff = now - timedelta(seconds=runtime.settings.requeue_after_seconds)
    async with unit_of_work(runtime.sessions) as session:
        ids = (
            await session.scalars(
                sa.update(ResponseRow)
                .where(ResponseRow.id.in_(_stale("queued", cutoff)))
                .where(ResponseRow.status == "queued", ResponseRow.heartbeat_at < cutoff)
                .values(heartbeat_at=now)
                .returning(ResponseRow.id)
            )
        ).all()
    bucket = int(now.timestamp() // runtime.settings.requeue_after_seconds)
    requeued = 0
    for response_id in ids:
        if await runtime.queue.is_pending(response_id, runtime.settings.requeue_after_seconds):
            continue  # still waiting in a backed-up queue: not lost
        await runtime.queue.enqueue(response_id, key=f"{response_id}@{bucket}")
        requeued += 1
    return requeued


async def _settle_stale(runtime: Runtime) -> tuple[int, int]:
    settings = runtime.settings
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.lease_seconds)
    async with unit_of_work(runtime.sessions) as session:
        stale = (
            await session.execute(
                sa.select(
                    ResponseRow.id,
                    ResponseRow.background,
                    ResponseRow.attempts,
                    ResponseRow.conversation_id,
                ).where(ResponseRow.id.in_(_stale("in_progress", cutoff)))
            )
        ).all()
    retried = failed = 0
    for row in stale:
        if row.background and row.attempts < settings.max_attempts:
            retried += await _retry(runtime, row.id, cutoff)
        else:
            message = GAVE_UP.format(attempts=row.attempts) if row.background else ORPHANED
            failed += await _fail(runtime, row.id, row.conversation_id, cutoff, message)
    return retried, failed


def _stale(status: str, cutoff: object) -> sa.Select[Any]:
    return (
        sa.select(ResponseRow.id)
        .where(ResponseRow.status == status, ResponseRow.heartbeat_at < cutoff)
        .limit(BATCH)
    )


def _still_stale(response_id: str, cutoff: object) -> sa.Update:
    """An UPDATE that only applies if the run is still in_progress with a stale heartbeat."""
    return sa.update(ResponseRow).where(
        ResponseRow.id == response_id,
        ResponseRow.status == "in_progress",
        ResponseRow.heartbeat_at < cutoff,
    )


async def _retry(runtime: Runtime, response_id: str, cutoff: object) -> int:
    async with unit_of_work(runtime.sessions) as session:
        result = await session.execute(
            _still_stale(response_id, cutoff).values(status="queued", heartbeat_at=utcnow())
        )
    if not result.rowcount:  # type: ignore[attr-defined]
        return 0
    from app.runs.jobs import ANNOUNCED_EVENTS  # the jobs module imports the runtime

    await runtime.event_log.truncate(response_id, ANNOUNCED_EVENTS)
    await runtime.queue.enqueue(response_id, key=f"{response_id}@retry{utcnow().timestamp():.0f}")
    return 1


async def _fail(
    runtime: Runtime, response_id: str, conversation_id: str | None, cutoff: object, message: str
) -> int:
    async with unit_of_work(runtime.sessions) as session:
        result = await session.execute(
            _still_stale(response_id, cutoff).values(
                status="failed", error={"code": "server_error", "message": message}
            )
        )
        if result.rowcount and conversation_id is not None:  # type: ignore[attr-defined]
            await conversations.release_lease(session, conversation_id, response_id)
        row = await session.get(ResponseRow, response_id) if result.rowcount else None  # type: ignore[attr-defined]
    if row is None:
        return 0
    if row.background:
        await runtime.event_log.fence(response_id, 0)  # a stale run still alive must stop
        # Readers of the stream learn the ending as they would from a worker.
        log_ = runtime.event_log
        event = {
            "type": "response.failed",
            "sequence_number": await log_.next_sequence(response_id),
            "response": convert.to_wire(row, []),
        }
        with contextlib.suppress(EventLogClosed):
            await log_.append(response_id, [event])
    await runtime.event_log.end(response_id, runtime.settings.event_ttl_seconds)
    return 1
