"""The worker entrypoint: run one background response by id, idempotently.

A run first claims its row (queued → in_progress, attempts + 1) with a conditional UPDATE; a run
that claims nothing exits, so a job delivered twice runs once. It rebuilds the generation from
the stored request, items and history, appends its events to the response's event log (a burst
of them in one append: app/runs/log_writer.py), and ends through the same settle as a
foreground response. Cancelled mid-run, it leaves the response as the cancel stored it (what
the cancel answered is what stays), or gives a response it was interrupted on (shutdown) back
to the queue for the sweeper to re-enqueue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import fitting, history
from app.context.assembly import Window
from app.context.history import History
from app.db.base import utcnow
from app.db.models import ResponseRow
from app.db.session import single_statements, unit_of_work
from app.errors import ApiError
from app.providers import draining
from app.providers.base import GenerationRequest
from app.responses import convert, repository, together
from app.responses.background import announcement
from app.responses.service import ResponseService
from app.responses.validation import parse_tools
from app.runs import loop
from app.runs import outcome as outcomes
from app.runs.event_log import EventLogClosed, LeaseLost
from app.runs.foreground import TERMINAL_EVENTS
from app.runs.log_writer import LogWriter
from app.runs.started import Started
from app.runtime import Runtime
from app.tools import credentials, toolset
from app.wire.responses import CreateResponseRequest

log = logging.getLogger("rapport.jobs")

# response.created and response.queued are written by the API when it accepts the response.
ANNOUNCED_EVENTS = 2


async def run_job(
    runtime: Runtime,
    responses: ResponseService,
    response_id: str,
    turns: asyncio.Semaphore | None = None,
) -> None:
    """Run one response; with `turns`, its work before and after the model's answer waits for
    one of them (a worker's CPU phases in order: app/queue/worker.py)."""
    draining.leave_to_the_queue()  # interrupted by a shutdown, it goes back to the queue
    turn: contextlib.AbstractAsyncContextManager[Any] = turns or contextlib.nullcontext()
    async with turn:
        started = await claim(runtime, responses, response_id)
        if started is None:
            return
        row, events_log = started.row, runtime.event_log
        emitter, run = loop.stream_run(started, runtime.sealer, ANNOUNCED_EVENTS)
        epoch = row.attempts  # this run's attempt: every write below is fenced by it
        snapshot = convert.to_wire(row, [])
        in_progress = [emitter.event("response.in_progress", response=snapshot)]
        try:
            held = await events_log.fence(row.id, epoch, in_progress, if_holding=ANNOUNCED_EVENTS)
            if held < ANNOUNCED_EVENTS:
                # Accepted while Redis was down: the announcement is written now, before the rest.
                queued = convert.to_wire(row, [])
                queued.status = "queued"
                await events_log.append(row.id, [*announcement(queued), *in_progress], epoch)
        except LeaseLost:
            return  # the sweeper already gave the response to another attempt
        except EventLogClosed:
            return  # cancelled between the claim and the first event: the cancel ended it all
    me = asyncio.current_task()
    events = run.events()
    writer = LogWriter(events_log, row.id, epoch)
    try:
        async with responses.kept_alive(started, on_lost=me.cancel if me else None):
            async for event in events:
                writer.add(event)
            # The last of them go with the terminal event, after the settle: a cancel or a
            # takeover that happens meanwhile has already ended the response in the database
            # (the cancel writes it before it ends the log), so the settle refuses and its
            # ender writes the log.
            rest = await writer.unsent()
    except asyncio.CancelledError:
        await asyncio.shield(writer.discard())
        await asyncio.shield(_after_abort(runtime, started))
        raise
    except LeaseLost:
        await writer.discard()
        await events.aclose()  # another attempt holds the response now: leave it be
        log.warning("run stopped: its lease was lost", extra={"response_id": row.id})
        return
    except EventLogClosed:
        # Cancelled while the abort was still on its way: stop here, as the abort would.
        await writer.discard()
        await events.aclose()
        await _after_abort(runtime, started)
        return
    except BaseException:
        await writer.discard()
        raise
    outcome = run.outcome
    assert outcome is not None  # StreamRun.events() always ends with an outcome
    async with turn:
        if await responses.settle(started, outcome) is not outcome:
            return  # ended elsewhere (cancelled, swept, taken over): its ender writes the log
        final = convert.to_wire(row, outcome.output)
        terminal = emitter.event(TERMINAL_EVENTS[outcome.status], response=final)
        # LeaseLost: another attempt holds the log; EventLogClosed: a cancel ended it meanwhile.
        with contextlib.suppress(LeaseLost, EventLogClosed):
            await events_log.end(
                row.id, runtime.settings.event_ttl_seconds, [*rest, terminal], epoch
            )


async def claim(runtime: Runtime, responses: ResponseService, response_id: str) -> Started | None:
    """Take the response if it is still queued, and rebuild what it is to generate."""
    now = utcnow()
    # Each statement commits alone: the claim is one conditional UPDATE (which returns the
    # input items too), the rest reads.
    async with single_statements(runtime.sessions) as session:
        claimed = await together.claim_with_input(session, response_id, now)
        if claimed is None:
            return None
        row, input_bodies = claimed
        stored = dict(row.request or {})
        stored["tools"] = credentials.open_tools(stored.get("tools"), runtime.sealer)
        request = msgspec.convert(stored, CreateResponseRequest)
        route, provider = runtime.providers.resolve(row.model)
        left_out = frozenset(route.drop_hosted_tools) | frozenset(route.upstream_tools)
        parsed = parse_tools(request.tools or [], dropped=left_out)
        tools = parsed.client
        hosted = toolset.build(
            parsed.indexed_hosted, runtime.settings, runtime.http, request.include
        )
        fitter = fitting.for_request(request, row.model, route, runtime.sealer, tools)
        counting = time.monotonic()
        await fitter.precount(input_bodies)  # a big input is counted off the worker's loop
        if time.monotonic() - counting > RENEW_AFTER_COUNTING_SECONDS:
            # As of now: a count of seconds is no sign of a dead run.
            row.heartbeat_at = utcnow()
            await repository.renew_heartbeat(session, response_id, row.heartbeat_at)
        failure: outcomes.Outcome | None = None
        window: Window | None = None
        past = History()
        try:
            cut = fitter.cut(input_bodies)
            past = await _history(runtime, session, row, now, fitter.encoding, cut)
            window = fitter.window(past, input_bodies)
        except ApiError as exc:  # the conversation was taken while this response waited, or
            # the history grew past the window since the response was accepted
            code = "invalid_prompt" if exc.code == "context_length_exceeded" else exc.code
            failure = outcomes.failed_outcome(code or "invalid_prompt", exc.message)
    generation = GenerationRequest(
        model=row.model,
        instructions=row.instructions,
        context=window.context if window is not None else [],
        params=request,
        tools=tools,
    )
    started = Started(
        row=row,
        provider=provider,
        generation=generation,
        store=True,
        input_ids=[body["id"] for body in input_bodies],
        fitter=fitter,
        plan=window.plan if window is not None else None,
        tools=hosted,
        past=past,
        input=History(input_bodies, list(window.input_counts), encoding=fitter.encoding)
        if window is not None
        else History(),
    )
    if failure is not None:
        await responses.settle(started, failure)
        await runtime.event_log.end(response_id, runtime.settings.event_ttl_seconds)
        return None
    return started


# Counting an input for longer than this renews the heartbeat before the run goes on.
RENEW_AFTER_COUNTING_SECONDS = 1.0


async def _history(
    runtime: Runtime,
    session: AsyncSession,
    row: ResponseRow,
    now: datetime,
    encoding: str,
    cut: history.Cut | None,
) -> History:
    if row.conversation_id is not None:
        return await history.conversation(
            session,
            row.project_id,
            row.conversation_id,
            row.id,
            now,
            runtime.settings.lease_seconds,
            encoding,
            cut,
        )
    return await history.chain(session, row.project_id, row.previous_response_id, encoding, cut)


async def leave_for_the_sweeper(runtime: Runtime, response_id: str) -> None:
    """A job the worker took but will not start (it is stopping): the response, still queued,
    looks forgotten at once, so the next sweep of any worker enqueues it again."""
    async with unit_of_work(runtime.sessions) as session:
        await session.execute(
            sa.update(ResponseRow)
            .where(ResponseRow.id == response_id, ResponseRow.status == "queued")
            .values(heartbeat_at=_stale_now(runtime))
        )


def _stale_now(runtime: Runtime) -> datetime:
    """A heartbeat old enough that the next sweep acts on the response without waiting."""
    return utcnow() - timedelta(seconds=runtime.settings.requeue_after_seconds * 2)


async def _after_abort(runtime: Runtime, started: Started) -> None:
    """Cancelled: leave the response exactly as the cancel stored and answered it. Interrupted
    (shutdown): back to the queue. Either only while the response is still at this run's
    attempt (a run stopped because its lease was lost leaves it to whoever holds it now).

    A cancel answers the row it wrote, so nothing may be added to it afterwards: the partial
    output this run streamed stays in the event log, never in the stored response.
    """
    row = started.row
    async with unit_of_work(runtime.sessions) as session:
        found = (
            await session.execute(
                sa.select(ResponseRow.status, ResponseRow.attempts).where(ResponseRow.id == row.id)
            )
        ).one()
        status = found.status if found.attempts == row.attempts else "taken over"
        if status == "in_progress":
            await session.execute(
                sa.update(ResponseRow)
                .where(ResponseRow.id == row.id, ResponseRow.status == "in_progress")
                .values(status="queued", heartbeat_at=_stale_now(runtime))
            )
    if status == "in_progress":
        await runtime.event_log.fence(row.id, 0)
        await runtime.event_log.truncate(row.id, ANNOUNCED_EVENTS)
        log.info("run interrupted; response queued again", extra={"response_id": row.id})
    elif status == "cancelled":
        await runtime.event_log.end(row.id, runtime.settings.event_ttl_seconds)
