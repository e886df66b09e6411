"""Create, retrieve, delete and list: the Responses use cases, free of HTTP and SQL.

A create is two short units of work around the upstream call, and no connection is held while
the model runs: #1 checks, reads the history and stores the response `in_progress` with its
input; #2 stores the terminal state and the output. With `store: false` neither writes. Off a
conversation, each unit's write is a single statement on Postgres (app/responses/together.py),
so neither needs a transaction: DESIGN.md's "commit" is that statement's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import acceptance, offload
from app.auth import Caller
from app.config import ModelRoute
from app.context import assembly, fitting, history
from app.context.assembly import Window
from app.context.compaction import Plan, Sealer
from app.context.fitting import Fitter
from app.context.history import History
from app.db.base import utcnow
from app.db.models import ResponseRow
from app.db.session import single_statements, unit_of_work
from app.errors import NotFound, ServerFault, response_not_found
from app.observability import record
from app.outage import CommitUncertain, unavailable
from app.pagination import PageRequest, object_list
from app.providers.base import GenerationRequest, Provider
from app.responses import convert, references, repository, rows, settling, together
from app.responses.tool_checks import dropped_tools
from app.responses.validation import PreparedRequest, check_route_accepts, prepare
from app.runs import foreground, lease, loop
from app.runs import outcome as outcomes
from app.runs.started import Started
from app.runtime import Runtime
from app.tools import approvals, toolset
from app.tools.toolset import Toolset
from app.transports import sse
from app.wire.common import DeletedObject, ObjectList
from app.wire.items import stored_body
from app.wire.responses import CreateResponseRequest, Response

Launch = Callable[[Provider, GenerationRequest, str, Plan | None, Toolset, int], Any]

# How long a queued background response holds its conversation before a worker renews it.
QUEUED_LEASE_SECONDS = 600.0


class ResponseService:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._sessions = runtime.sessions

    async def create(self, caller: Caller, request: CreateResponseRequest) -> Response:
        """The non-streaming create: the upstream's own non-streaming call, one JSON answer."""

        def launch(
            provider: Provider,
            generation: GenerationRequest,
            response_id: str,
            plan: Plan | None,
            tools: Toolset,
            input_count: int,
        ) -> Any:
            sealer = self._runtime.sealer
            return asyncio.create_task(
                loop.run(provider, generation, response_id, plan, sealer, tools, input_count)
            )

        started = await self.begin(caller, request, launch)
        try:
            async with self.kept_alive(started, on_lost=started.launched.cancel):
                outcome = await started.launched
        except asyncio.CancelledError:
            if started.launched.cancelled() and not _cancelling():
                outcome = outcomes.lost()  # the lease is gone: stop generating, keep nothing
            else:
                # The server is shutting down mid-generation: settle the row before going.
                await asyncio.shield(self.settle(started, outcomes.interrupted([])))
                raise
        outcome = await self.settle(started, outcome)
        if outcome.status == "failed":
            if settling.not_stored(outcome):
                raise unavailable(started.row.id)
            if outcome.failure is not None:
                raise outcome.failure.api_error(started.row.id if started.store else None)
            error = outcome.values.get("error") or {}
            raise ServerFault(
                (error.get("message") or "The server had an error while processing your request.")
                + f" (response {started.row.id})",
                headers={"x-should-retry": "false"},
            )
        return convert.to_wire(started.row, outcome.output)

    async def create_stream(
        self, caller: Caller, request: CreateResponseRequest
    ) -> AsyncIterator[bytes]:
        """Checks and unit of work #1 run now, so their errors are plain JSON, not SSE.

        The upstream stream starts after the commit and is read in the response's own task:
        pumped from another task, a cancelled read left httpx's connection open, so a client
        that went away would not abort the upstream call.
        """
        started = await self.begin(caller, request)
        return sse.frames(foreground.events(started, self))

    async def begin(
        self,
        caller: Caller,
        request: CreateResponseRequest,
        launch: Launch | None = None,
        *,
        history: History | None = None,
    ) -> Started:
        """Checks and unit of work #1. `launch` starts the generation as soon as the context is
        known, so the upstream call overlaps the inserts and the commit: the model's latency is
        the floor, and Rapport's first write need not add to it. Should the unit of work fail,
        the launched run is cancelled and the client gets the error.

        `history`, when given, is what `previous_response_id` continues, instead of the stored
        chain: a WebSocket connection holds its last response's context, which an unstored
        (`store: false`) response has nowhere else."""
        dropped = dropped_tools(self._runtime.providers, request.model)
        prepared, input_bodies = await offload.off_loop(
            lambda: _prepared_input(request, dropped), request.input
        )
        route, provider = self._runtime.providers.resolve(prepared.model)
        fitter = await offload.off_loop(
            lambda: fitting.for_request(
                request, prepared.model, route, self._runtime.sealer, prepared.tools
            ),
            request.instructions,  # counted when the fitter is made
        )
        # Before the row is made: its heartbeat starts at its creation, and a count of seconds
        # must not make a response look abandoned to the sweeper before it is even stored.
        await fitter.precount(input_bodies)
        hosted, settings = prepared.parsed_tools.indexed_hosted, self._runtime.settings
        tools = toolset.build(hosted, settings, self._runtime.http, request.include)
        await toolset.check_hosts(hosted, settings)
        row = rows.new_row(caller, prepared, self._runtime.sealer)
        record.started(row)
        store = request.store is not False
        made: dict[str, Any] = {}

        def context_ready(window: Window) -> None:
            made["window"] = window
            made["generation"] = generation = GenerationRequest(
                model=prepared.model,
                instructions=request.instructions,
                context=window.context,
                params=request,
                tools=prepared.tools,
            )
            if launch is not None:
                made["launched"] = launch(
                    provider, generation, row.id, window.plan, tools, len(input_bodies)
                )

        try:
            input_bodies, past = await self._start(
                row, input_bodies, store, fitter, context_ready, route, history
            )
        except BaseException as exc:
            if "launched" in made:
                made["launched"].cancel()  # unit of work #1 failed: no model run for it
            if store and isinstance(exc, CommitUncertain):
                acceptance.record(row.id)  # it may be stored: a 5xx must not invite a retry
            raise
        if store:
            acceptance.record(row.id)
        return Started(
            row=row,
            provider=provider,
            generation=made["generation"],
            store=store,
            input_ids=[body["id"] for body in input_bodies],
            fitter=fitter,
            plan=made["window"].plan,
            tools=tools,
            launched=made.get("launched"),
            past=past,
            input=History(
                input_bodies, list(made["window"].input_counts), encoding=fitter.encoding
            ),
        )

    @property
    def sealer(self) -> Sealer:
        return self._runtime.sealer

    def kept_alive(
        self, started: Started, on_lost: Callable[[], object] | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Heartbeat and conversation lease renewals for as long as the generation runs,
        fenced by the run's attempt: `on_lost` is called once the lease is gone. A response
        that is not stored has no lease to keep."""
        if not started.store:
            return contextlib.nullcontext()
        return lease.kept_alive(
            self._sessions,
            started.row.id,
            started.row.conversation_id,
            self._runtime.settings.lease_seconds,
            on_lost,
            epoch=started.row.attempts,
        )

    async def settle(self, started: Started, outcome: outcomes.Outcome) -> outcomes.Outcome:
        """Record the terminal state (unit of work #2); returns the outcome that stands, which
        is what the client must get (settling.py says when it is not `outcome`).

        A big answer is counted first, off the loop and under the run's lease: tokenizing a
        9 MB answer takes seconds, and a lease left to lapse meanwhile would have the sweeper
        fail a response that is about to be stored."""
        async with self.kept_alive(started):
            await started.fitter.precount(outcome.output)
        settled = await settling.settle(self._sessions, started, outcome)
        record.settled(started.row, settled)
        return settled

    async def _start(
        self,
        row: ResponseRow,
        input_bodies: list[dict[str, Any]],
        store: bool,
        fitter: Fitter,
        context_ready: Callable[[Window], None],
        route: ModelRoute,
        history: History | None,
    ) -> tuple[list[dict[str, Any]], History]:
        """Unit of work #1: resolve item references, read the history (unless it is given),
        check pairing, fit the window, store the response and its input (with their token
        counts, the cache later turns read). Returns the input as stored, and the history."""
        # Off a conversation, the only write is one statement (app/responses/together.py):
        # the reads before it need no transaction, so it needs none of its own either. A
        # conversation's history read takes its lease, which must stand or fall with it.
        alone = row.conversation_id is None and together.fits_one_statement(input_bodies)
        async with (single_statements if alone else unit_of_work)(self._sessions) as session:
            input_bodies = await references.resolve(session, row.project_id, input_bodies)
            check_route_accepts(route, input_bodies)
            if history is None:
                cut = fitter.cut(input_bodies)
                past = await self._history(session, row, fitter.encoding, cut)
            else:
                past = history.counted_in(fitter.encoding)
            assembly.check_tool_pairing(past.bodies + input_bodies)
            approvals.check(past.bodies + input_bodies)
            window = fitter.window(past, input_bodies)
            context_ready(window)
            if store:
                inputs = together.NewItems(
                    project_id=row.project_id,
                    response_id=row.id,
                    side=repository.INPUT,
                    bodies=input_bodies,
                    created_at=row.created_at,
                    token_counts=window.input_counts,
                    token_encoding=fitter.encoding,
                )
                values = rows.insert_values(row)
                await together.insert_response_with_items(session, values, inputs)
        return input_bodies, past

    async def _history(
        self, session: AsyncSession, row: ResponseRow, encoding: str, cut: history.Cut | None
    ) -> History:
        if row.conversation_id is None:
            previous = row.previous_response_id
            return await history.chain(session, row.project_id, previous, encoding, cut)
        # A queued background response holds the conversation until a worker takes it and
        # renews the lease like any running response.
        seconds = self._runtime.settings.lease_seconds
        return await history.conversation(
            session,
            row.project_id,
            row.conversation_id,
            row.id,
            row.created_at,
            QUEUED_LEASE_SECONDS if row.background else seconds,
            encoding,
            cut,
        )

    async def retrieve(self, caller: Caller, response_id: str) -> Response:
        """Two reads, each its own snapshot, as they would be in a READ COMMITTED transaction
        too: no BEGIN and COMMIT around them (a background response is polled with this)."""
        async with single_statements(self._sessions) as session:
            row = await repository.get_response(session, caller.project_id, response_id)
            if row is None:
                raise response_not_found(response_id)
            output = await repository.get_bodies(session, response_id)
        return convert.to_wire(row, output)

    async def delete(self, caller: Caller, response_id: str) -> DeletedObject:
        async with unit_of_work(self._sessions) as session:
            deleted = await repository.soft_delete(
                session, caller.project_id, response_id, utcnow()
            )
        if not deleted:
            raise response_not_found(response_id)
        return DeletedObject(id=response_id, object="response")

    async def list_input_items(
        self, caller: Caller, response_id: str, page: PageRequest
    ) -> ObjectList:
        async with single_statements(self._sessions) as session:  # reads only, as retrieve
            if await repository.get_response(session, caller.project_id, response_id) is None:
                raise response_not_found(response_id)
            rows = await repository.page_input_items(session, response_id, page)
        if rows is None:
            cursor = page.after if page.after is not None else page.before
            raise response_item_not_found(cursor or "")
        return object_list(rows, page.limit)


def _cancelling() -> bool:
    """Whether this very task is being cancelled (shutdown), not just the run it awaited."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def response_item_not_found(item_id: str) -> NotFound:
    return NotFound(f"Item with id '{item_id}' not found.", param="after")


def _prepared_input(
    request: CreateResponseRequest, dropped: frozenset[str]
) -> tuple[PreparedRequest, list[dict[str, Any]]]:
    """Validation and the input items as they are stored: work per item, which for a big
    input runs in a worker thread (app/offload.py)."""
    prepared = prepare(request, dropped)
    bodies = [stored_body(item) for item in prepared.input_items]
    approvals.repoint(prepared.input_items, bodies)
    return prepared, bodies
