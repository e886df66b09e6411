"""Background responses on the API side: accept and enqueue, stream from the log, cancel.

Accepting is the foreground's unit of work #1 with the row `queued`, then `response.created`
and `response.queued` go into the event log and the id into the queue — after the commit, so a
worker never sees an id whose row is not there yet. Streaming (at create, or later with GET
`stream=true`) reads the event log, so a client that goes away does not stop the run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Caller
from app.conversations import repository as conversations
from app.db.models import ResponseRow
from app.db.session import unit_of_work
from app.errors import InvalidRequest, response_not_found
from app.observability import metrics
from app.responses import convert, repository
from app.responses.service import ResponseService
from app.runs.emitter import Emitter
from app.runtime import Runtime
from app.tokens.models import encoding_for
from app.transports.sse import frame
from app.wire.responses import CreateResponseRequest, Response

ACTIVE = ("queued", "in_progress")
log = logging.getLogger("rapport.background")


class BackgroundResponses:
    def __init__(self, runtime: Runtime, responses: ResponseService) -> None:
        self._runtime = runtime
        self._responses = responses

    async def create(self, caller: Caller, request: CreateResponseRequest) -> Response:
        started = await self._responses.begin(caller, request)
        snapshot = convert.to_wire(started.row, [])
        try:
            await self._runtime.event_log.append(started.row.id, announcement(snapshot))
            await self._runtime.queue.enqueue(started.row.id)
        except (RedisError, OSError) as exc:
            # The response is stored `queued`: accepted. A 5xx now would have the SDK retry
            # and create it again; the sweeper enqueues it once Redis answers, and the worker
            # that runs it writes the announcement that could not be written here.
            log.warning(
                "queue unreachable; the response waits for the sweeper",
                extra={"response_id": started.row.id, "error_kind": type(exc).__name__},
            )
        return snapshot

    async def create_stream(
        self, caller: Caller, request: CreateResponseRequest
    ) -> AsyncIterator[bytes]:
        accepted = await self.create(caller, request)
        return _frames(self._runtime.event_log.follow(accepted.id, -1), obfuscate=True)

    async def stream(
        self, caller: Caller, response_id: str, starting_after: int, obfuscate: bool
    ) -> AsyncIterator[bytes]:
        """Replay after `starting_after`, then follow live until the response ends."""
        async with unit_of_work(self._runtime.sessions) as session:
            row = await _owned(session, caller, response_id)
        if not row.background:
            raise InvalidRequest(
                "Only background responses can be streamed again; this response was created "
                "with 'background': false.",
                param="stream",
            )
        if not await self._runtime.event_log.exists(response_id):
            raise InvalidRequest(
                "This response can no longer be streamed: its events have expired.",
                param="stream",
            )
        metrics.STREAM_RESUMES.inc()
        return _frames(self._runtime.event_log.follow(response_id, starting_after), obfuscate)

    async def cancel(self, caller: Caller, response_id: str) -> Response:
        """Cancel a queued or running background response; an ended one is returned as it is."""
        async with unit_of_work(self._runtime.sessions) as session:
            row = await _owned(session, caller, response_id)
            if not row.background:
                raise InvalidRequest(
                    "Cannot cancel a synchronous response.",
                    headers={"x-should-retry": "false"},
                )
            cancelled = row.status in ACTIVE and await repository.finish_response(
                session,
                caller.project_id,
                response_id,
                {"status": "cancelled"},
                chain=self._cancelled_chain(row.model),
            )
            if cancelled and row.conversation_id is not None:
                await conversations.release_lease(session, row.conversation_id, response_id)
        if cancelled:
            await self._runtime.queue.abort(response_id)
            await self._runtime.event_log.end(response_id, self._runtime.settings.event_ttl_seconds)
        return await self._responses.retrieve(caller, response_id)

    def _cancelled_chain(self, model: str) -> repository.ChainEnd:
        """A cancelled response keeps no output (what the cancel answers stays stored): its
        chain's running count grows by its input alone, so a chain continued after a cancel
        still stops its walk at the window."""
        route, _ = self._runtime.providers.resolve(model)
        return repository.ChainEnd(0, encoding_for(model, route))


def announcement(snapshot: Response) -> list[dict[str, Any]]:
    """The first two events of every background response: created, then queued."""
    emitter = Emitter()
    return [
        emitter.event("response.created", response=snapshot),
        emitter.event("response.queued", response=snapshot),
    ]


async def _owned(session: AsyncSession, caller: Caller, response_id: str) -> ResponseRow:
    row = await repository.get_response(session, caller.project_id, response_id)
    if row is None:
        raise response_not_found(response_id)
    return row


async def _frames(events: AsyncIterator[dict[str, Any]], obfuscate: bool) -> AsyncIterator[bytes]:
    async for event in events:
        if not obfuscate:
            event.pop("obfuscation", None)
        yield frame(event)
