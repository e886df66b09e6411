"""Unit of work #2: a run's terminal state written once, fenced by the run's attempt, and the
answer a client gets always the one that is stored.

The write only applies to a response that is still active *and* still held by this run (its
`attempts` is the run's own): a run whose lease lapsed — its heartbeats could not be written,
its process froze — may have been failed by the sweeper or handed to another worker, and its
late result must not overwrite that. When the write does not apply, the stored state is read
back and stands: the client gets what `GET` will show, never a `completed` the database does
not hold. When the database cannot be reached at all, the run ends `failed` for the client
("not stored"), which is what the sweeper will store once the database is back.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations import repository as conversations
from app.db.base import utcnow
from app.db.models import ResponseRow
from app.db.session import single_statements, unit_of_work
from app.outage import CommitUncertain
from app.responses import repository, rows, together
from app.runs import outcome as outcomes
from app.runs.started import Started

log = logging.getLogger("rapport.settle")

NOT_STORED = (
    "The response was generated but could not be stored: the database did not answer. "
    "It will be marked failed."
)
_UNREACHABLE = (
    OperationalError,
    InterfaceError,
    DBAPIError,
    OSError,
    TimeoutError,
    CommitUncertain,
)


async def settle(
    sessions: async_sessionmaker[AsyncSession], started: Started, outcome: outcomes.Outcome
) -> outcomes.Outcome:
    """Record the ending (or, with `store: false`, only apply it); return the one that stands."""
    if not started.store:
        rows.apply_final(started.row, outcome.values)
        return outcome
    try:
        if await _finish(sessions, started, outcome):
            rows.apply_final(started.row, outcome.values)
            return outcome
        return await _stored(sessions, started)
    except _UNREACHABLE as exc:
        log.error(
            "final state not stored",
            extra={"response_id": started.row.id, "error_kind": type(exc).__name__},
        )
        unstored = outcomes.failed_outcome("server_error", NOT_STORED)
        rows.apply_final(started.row, unstored.values)
        return unstored


def not_stored(outcome: outcomes.Outcome) -> bool:
    """Whether `outcome` is the stand-in for an ending the database did not take."""
    error = outcome.values.get("error") or {}
    return outcome.status == "failed" and error.get("message") == NOT_STORED


async def _finish(
    sessions: async_sessionmaker[AsyncSession], started: Started, outcome: outcomes.Outcome
) -> bool:
    """Terminal state, output items, conversation turn — all or nothing; False when the
    response is no longer this run's to end (already ended, or its lease was taken over).

    A completed or incomplete response on a conversation appends its input items and then
    its output items to it; any ending releases the conversation's lock.
    """
    row = started.row
    final = rows.final_values(row, outcome.values)
    output_counts = started.fitter.counts(outcome.output)
    outputs = together.NewItems(
        project_id=row.project_id,
        response_id=row.id,
        side=repository.OUTPUT,
        bodies=outcome.output,
        created_at=utcnow(),
        token_counts=output_counts,
        token_encoding=started.fitter.encoding,
    )
    # Off a conversation, the ending is one statement (app/responses/together.py), which
    # needs no transaction of its own.
    alone = row.conversation_id is None and together.fits_one_statement(outcome.output)
    async with (single_statements if alone else unit_of_work)(sessions) as session:
        if not await together.finish_with_items(
            session,
            row.project_id,
            row.id,
            final,
            outputs,
            epoch=row.attempts,
            chain=_chain_end(started, output_counts, outcome),
        ):
            return False
        if row.conversation_id is not None:
            # A run whose lease lapsed and was taken over must not interleave its turn with
            # the new holder's (the fenced write above already refuses most such runs): the
            # append applies only while this response or none holds the conversation.
            if outcome.status in ("completed", "incomplete"):
                turn = started.input_ids + [item["id"] for item in outcome.output]
                counted = _counted(started, output_counts, outcome)
                await conversations.append(
                    session, row.conversation_id, turn, counted, releasing=row.id
                )
            else:
                await conversations.release_lease(session, row.conversation_id, row.id)
    return True


def _chain_end(
    started: Started, output_counts: list[int], outcome: outcomes.Outcome
) -> repository.ChainEnd:
    """What the output adds to the chain's running count: nothing countable after a
    compaction, whose item stands for what came before it."""
    compacted = any(item.get("type") == conversations.COMPACTION for item in outcome.output)
    tokens = None if compacted else sum(output_counts)
    return repository.ChainEnd(tokens, started.fitter.encoding, started.past.stored_total)


def _counted(
    started: Started, output_counts: list[int], outcome: outcomes.Outcome
) -> list[conversations.Counted]:
    """The turn's items as the conversation keeps them: counts in the run's encoding."""
    encoding = started.fitter.encoding
    inputs = started.input
    known = len(inputs.bodies) == len(started.input_ids)  # else: counted on the next read
    input_counts: list[int | None] = (
        list(inputs.counts) if known else [None] * len(started.input_ids)
    )
    input_types = (
        [body["type"] for body in inputs.bodies] if known else [None] * len(started.input_ids)
    )
    entries = [
        conversations.Counted(count, encoding if count is not None else None, kind)
        for count, kind in zip(input_counts, input_types, strict=True)
    ]
    entries += [
        conversations.Counted(count, encoding, item["type"])
        for item, count in zip(outcome.output, output_counts, strict=True)
    ]
    return entries


async def _stored(sessions: async_sessionmaker[AsyncSession], started: Started) -> outcomes.Outcome:
    """The response as the database holds it, put on the in-memory row the client is sent."""
    row = started.row
    async with unit_of_work(sessions) as session:
        stored = await session.scalar(sa.select(ResponseRow).where(ResponseRow.id == row.id))
        output = await repository.get_bodies(session, row.id)
    assert stored is not None  # this run created it; responses are only soft-deleted
    values: dict[str, Any] = {
        column: getattr(stored, column)
        for column in ("status", "error", "usage", "completed_at", "incomplete_details", "params")
    }
    for column, value in values.items():
        setattr(row, column, value)
    log.warning(
        "run's ending not stored: the response had ended elsewhere",
        extra={"response_id": row.id, "status": stored.status},
    )
    return outcomes.Outcome(stored.status, output, values)
