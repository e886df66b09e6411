"""`Idempotency-Key` on the routes that create: a blind retry gets the first answer back.

The OpenAI SDKs retry a create that timed out or got a 5xx; without a key the retry creates a
second response (and runs the model again). With one, Stripe-style:

- The first request with a key claims (project, method and path, key) by inserting a row, with
  a fingerprint of its body and query; the row's primary key decides a race.
- When it ends, its answer is kept if the request stored something — a 2xx, or an error after
  the response was accepted (`app/acceptance.py`: the error names the stored id). A refusal
  before anything was stored (a 400, a 404, `conversation_locked`, a retryable 503) releases
  the key, so a corrected or later request may use it. `store: false` answers are not kept
  either: keeping their body would store what the caller asked us not to.
- A retry with the same key and fingerprint gets the kept answer (`idempotent-replayed: true`);
  another body is a 400 naming `Idempotency-Key`; while the first still runs, a 409
  `idempotency_key_in_use` with `retry-after` (the SDKs retry a 409 by themselves).
- Keys expire 24 h after their first use; a row whose request never finished (its process
  died) may be taken over after 15 minutes.

Streamed creates are replayed as a short stream — `response.created`, then the kept terminal
event — not as JSON: a client that asked for a stream parses SSE (the SDK would find no events
in a JSON body), and the terminal event holds the whole final Response, the same id and text;
the deltas are not kept. A stream cut before its terminal event releases the key: OpenAI
cancels a foreground response whose client went away, so the retry must run anew.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio
import msgspec
from litestar import Request, Response
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import acceptance, outage
from app.db.base import utcnow
from app.db.models import IdempotencyKey
from app.db.session import unit_of_work
from app.errors import ApiError, Conflict, InvalidRequest, unexpected
from app.idempotency import repository
from app.transports import sse
from app.wire import codec, depth

HEADER = "idempotency-key"
EXPIRES_AFTER = timedelta(hours=24)  # the sweeper deletes rows this old (app/queue/sweeper.py)
ABANDONED_AFTER = timedelta(minutes=15)
MAX_KEY_LENGTH = 255
JSON = "application/json"
SSE = "text/event-stream"
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
log = logging.getLogger("rapport.idempotency")

Create = Callable[[], Awaitable[Any]]


class Claim(msgspec.Struct, frozen=True):
    project_id: str
    route: str
    key: str
    claimed_at: datetime


class IdempotentCreates:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def run(self, request: Request[Any, Any, Any], project_id: str, create: Create) -> Any:
        """`create()` (a wire Struct, or SSE frames) answered once per key."""
        key = request.headers.get(HEADER)
        if key is None:
            return answer(await create())
        check_key(key)
        body = await request.body()
        depth.check(body)
        mark = fingerprint(body, request.url.query)
        route = f"{request.method} {request.url.path}"
        claimed = await self._claim(project_id, route, key, mark)
        if isinstance(claimed, IdempotencyKey):
            return replay(claimed, mark)
        return await self._first(claimed, create, str(request.scope.get("rapport_request_id")))

    async def _claim(
        self, project_id: str, route: str, key: str, mark: str
    ) -> Claim | IdempotencyKey:
        now = utcnow()
        values = {
            "project_id": project_id,
            "route": route,
            "key": key,
            "fingerprint": mark,
            "created_at": now,
        }
        async with unit_of_work(self._sessions) as session:
            if await repository.claim(session, values) or await repository.take_over(
                session,
                values,
                expired_before=now - EXPIRES_AFTER,
                abandoned_before=now - ABANDONED_AFTER,
            ):
                return Claim(project_id, route, key, now)
            row = await repository.get(session, project_id, route, key)
        if row is None:  # released between our insert and our read: the retry claims it
            raise in_use()
        return row

    async def _first(self, claim: Claim, create: Create, request_id: str) -> Any:
        try:
            created = await create()
        except ApiError as exc:
            await self._after_error(claim, exc)
            raise
        except Exception as exc:
            stored = acceptance.stored_id()
            fault = (
                outage.unavailable(stored)
                if outage.is_unreachable(exc)
                else unexpected(request_id, stored)
            )
            await self._after_error(claim, fault)
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._release(claim)
            raise
        if not isinstance(created, msgspec.Struct):
            return Stream(self._recorded(claim, created), media_type=SSE, headers=sse.HEADERS)
        content = codec.encoder.encode(created)
        if getattr(created, "store", True) is False:
            await self._release(claim)
        else:
            await self._keep(claim, 200, JSON, content, {})
        return Response(content, media_type=JSON)

    async def _after_error(self, claim: Claim, fault: ApiError) -> None:
        """Keep the error of a request that stored something; release the key otherwise."""
        if acceptance.stored_id() is None:
            await self._release(claim)
            return
        content = codec.encoder.encode(fault.envelope())
        await self._keep(claim, fault.status_code, JSON, content, fault.headers)

    async def _recorded(self, claim: Claim, frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        last = b""
        finished = False
        try:
            async with aclosing(frames):  # type: ignore[type-var]
                async for frame in frames:
                    last = frame
                    yield frame
            finished = True
        finally:
            with anyio.CancelScope(shield=True):
                event = terminal_event(last) if finished else None
                if event is not None and event["response"].get("store") is not False:
                    await self._keep(claim, 200, SSE, codec.encoder.encode(event), {})
                else:
                    await self._release(claim)

    async def _keep(
        self, claim: Claim, status: int, media_type: str, body: bytes, headers: dict[str, str]
    ) -> None:
        answer = {
            "status_code": status,
            "media_type": media_type,
            "body": body.decode(),
            "headers": dict(headers),
            "completed_at": utcnow(),
        }
        await self._write(claim, answer)

    async def _release(self, claim: Claim) -> None:
        await self._write(claim, None)

    async def _write(self, claim: Claim, answer: dict[str, Any] | None) -> None:
        """Finish (or, with no answer, release) the claim. A database that does not answer
        now leaves the row in flight until it is abandoned; the create's own answer stands."""
        try:
            async with unit_of_work(self._sessions) as session:
                where = (claim.project_id, claim.route, claim.key, claim.claimed_at)
                if answer is None:
                    await repository.release(session, *where)
                else:
                    await repository.finish(session, *where, answer)
        except outage.UNREACHABLE as exc:
            if not outage.is_unreachable(exc):
                raise
            log.warning("idempotency key not settled", extra={"error_kind": type(exc).__name__})


def answer(created: Any) -> Any:
    """What the route returns for `created` when no key is involved."""
    if isinstance(created, msgspec.Struct):
        return created
    return Stream(created, media_type=SSE, headers=sse.HEADERS)


def replay(row: IdempotencyKey, mark: str) -> Any:
    if row.fingerprint != mark:
        raise InvalidRequest(
            "This Idempotency-Key was already used with a different request body or query; "
            "use a new key for a different request.",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    if row.status_code is None or row.body is None:
        raise in_use()
    headers = {**(row.headers or {}), "idempotent-replayed": "true"}
    if row.media_type == SSE:
        return Stream(_replayed(row.body), media_type=SSE, headers={**sse.HEADERS, **headers})
    return Response(
        row.body.encode(), status_code=row.status_code, media_type=JSON, headers=headers
    )


async def _replayed(body: str) -> AsyncIterator[bytes]:
    """A kept stream: `response.created` with the response as it began, then its ending."""
    ending: dict[str, Any] = msgspec.json.decode(body)
    final = ending["response"]
    began = {**final, "status": "in_progress", "output": [], "completed_at": None}
    began.update(error=None, incomplete_details=None, usage=None)
    yield sse.frame({"type": "response.created", "sequence_number": 0, "response": began})
    yield sse.frame({**ending, "sequence_number": 1})


def terminal_event(frame: bytes) -> dict[str, Any] | None:
    """The event of an SSE frame when it ends a response (completed, incomplete, failed)."""
    head, _, data = frame.partition(b"\ndata: ")
    if head.removeprefix(b"event: ").decode(errors="replace") not in _TERMINAL:
        return None
    event: dict[str, Any] = msgspec.json.decode(data.strip())
    return event


def in_use() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry once it ends.",
        param="Idempotency-Key",
        code="idempotency_key_in_use",
        headers={"retry-after": "1", "x-should-retry": "true"},
    )


def check_key(key: str) -> None:
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all("!" <= char <= "~" for char in key):
        raise InvalidRequest(
            f"Invalid 'Idempotency-Key': expected 1 to {MAX_KEY_LENGTH} visible ASCII characters.",
            param="Idempotency-Key",
            code="invalid_value",
        )


def fingerprint(body: bytes, query: str) -> str:
    """sha256 of the request as it bears on the answer: the JSON body with its keys sorted
    (a client that re-serializes its retry still matches) and the query in order."""
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted")
    except msgspec.DecodeError:
        canonical = body
    ordered = urlencode(sorted(parse_qsl(query, keep_blank_values=True)))
    return hashlib.sha256(ordered.encode() + b"\n" + canonical).hexdigest()
