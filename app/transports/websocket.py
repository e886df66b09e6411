"""WebSocket mode at `/v1/responses`: sequential responses on one socket, events as text frames.

A client sends `response.create` events (the create body; `stream` is implied) and gets back
exactly the events an SSE stream of the same request carries — the same JSON, the same
sequence numbers, one text frame each — because they come from `runs/foreground.events` after
`ResponseService.begin`, the path SSE takes: validation, storing, settling and the cancel on a
closed socket are the same code. A refusal is an `error` event in OpenAI's shape (the HTTP
status, the error object), and the socket stays open for the next create.

A `generate: false` create is a warm-up: stored (or kept) and completed at once with no
output and no model call, so that the real turn continues it by `previous_response_id` and
sends only the new input, as Codex does when a session opens.

Each create is logged and counted as a request is (`observability/access.socket_turn`).

One response runs at a time per connection; a create while one runs is refused. The connection
keeps its last response's whole context (history, input, output) when that response was not
stored, so a `store: false` chain continues by `previous_response_id` on the same socket as at
OpenAI; a stored response is continued from the database, as over HTTP. A create that fails
(refused, or ending `response.failed`) evicts what was kept.

Each response runs in a task of its own so that the connection keeps reading meanwhile: a
concurrent create is refused at once, and a closed socket is noticed at once — it cancels the
task, which ends the response `cancelled` exactly as a closed SSE stream does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, aclosing
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from litestar.types.asgi_types import WebSocketResponseBodyEvent, WebSocketResponseStartEvent

from app import ids
from app.context.history import History
from app.errors import ApiError, InvalidRequest, invalid_value, not_supported, unexpected
from app.observability import access
from app.runs import foreground
from app.runs import outcome as outcomes
from app.wire import codec
from app.wire.codec import encoder
from app.wire.websocket import ClientEvent, ErrorEvent, ResponseCreateEvent

if TYPE_CHECKING:
    from app.auth import Authenticator, Caller
    from app.context.compaction import Sealer
    from app.prompts.service import PromptService
    from app.responses.service import ResponseService
    from app.runs.started import Started
    from app.wire.responses import CreateResponseRequest

log = logging.getLogger("rapport.websocket")

AnySocket = WebSocket[Any, Any, Any]
TERMINAL_EVENTS = frozenset(foreground.TERMINAL_EVENTS.values())
CONTINUABLE = frozenset({"completed", "incomplete"})  # what a later turn may continue
DENIAL = "websocket.http.response"  # the ASGI extension that refuses an upgrade with a body
POLICY_VIOLATION = 1008
ROUTE = "/v1/responses"  # the route its responses are logged under, as over HTTP


class Gone(Exception):
    """A frame could not be sent: the client has closed the socket (or the network lost it)."""


class Continuation(msgspec.Struct):
    """The connection's last unstored response, and the context a next turn continues."""

    response_id: str
    context: History


class WebSocketTransport:
    """What `/v1/responses` does with an upgrade: authenticate it, then serve the socket."""

    def __init__(
        self, authenticator: Authenticator, responses: ResponseService, prompts: PromptService
    ) -> None:
        self._authenticator = authenticator
        self._responses = responses
        self._prompts = prompts

    async def serve(self, socket: AnySocket) -> None:
        connection_id = ids.new_id(ids.REQUEST)  # quoted in server errors, as a request id is
        try:
            caller = await self._authenticator.authenticate(socket.headers.get("authorization"))
        except ApiError as exc:
            await refuse(socket, exc)
            return
        except Exception as exc:  # noqa: BLE001  (the database is down, say: said, not shown)
            await refuse(socket, fault(exc, connection_id))
            return
        try:
            await socket.accept()
        except (WebSocketDisconnect, OSError):
            return  # gone before the handshake was answered
        await Connection(socket, caller, self._responses, self._prompts, connection_id).run()


async def refuse(socket: AnySocket, exc: ApiError) -> None:
    """Refuse the upgrade with an HTTP answer carrying OpenAI's error object (a 401 for a bad
    key, as over HTTP), not the bare 403 a `websocket.close` before accepting gives. A server
    without ASGI's denial extension can only give that 403; there the socket is accepted to
    carry an `error` event, then closed."""
    if DENIAL not in (socket.scope.get("extensions") or {}):
        await socket.accept()
        await socket.send_text(error_frame(exc).decode())
        await socket.close(POLICY_VIOLATION)
        return
    await socket.receive()  # `websocket.connect`, the first message of every socket
    headers = [(name.encode(), value.encode()) for name, value in exc.headers.items()]
    start: WebSocketResponseStartEvent = {
        "type": "websocket.http.response.start",
        "status": exc.status_code,
        "headers": [(b"content-type", b"application/json"), *headers],
    }
    body: WebSocketResponseBodyEvent = {
        "type": "websocket.http.response.body",
        "body": encoder.encode(exc.envelope()),
        "more_body": False,
    }
    await socket.send(start)
    await socket.send(body)


class Connection:
    """One accepted socket: the response in flight (at most one) and the last one kept."""

    def __init__(
        self,
        socket: AnySocket,
        caller: Caller,
        responses: ResponseService,
        prompts: PromptService,
        connection_id: str,
    ) -> None:
        self._socket = socket
        self._caller = caller
        self._responses = responses
        self._prompts = prompts
        self._id = connection_id
        self._sending = asyncio.Lock()  # frames leave whole and in order, from either task
        self._turn: asyncio.Task[None] | None = None
        self._in_flight = False
        self._last: Continuation | None = None

    async def run(self) -> None:
        """Read client events until the socket closes, then cancel the response in flight and
        wait for it to be settled (so it is `cancelled` when the handler returns)."""
        try:
            while True:
                message = await self._socket.receive()
                if message["type"] != "websocket.receive":
                    return  # websocket.disconnect
                await self._on_event(message.get("text") or message.get("bytes") or b"")
        finally:
            turn = self._turn
            if turn is not None and not turn.done():
                turn.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await turn

    async def _on_event(self, data: str | bytes) -> None:
        try:
            event = decode_create(data)
        except ApiError as exc:
            if not self._in_flight:
                self._last = None  # a create that fails evicts what was kept
            await self._refuse(exc)
            return
        if self._in_flight:
            await self._refuse(in_flight())
            return
        self._in_flight = True
        self._turn = asyncio.create_task(self._respond(event))

    async def _respond(self, event: ResponseCreateEvent) -> None:
        """One response, observed as a request is: its access line and its count."""
        with self._observed() as turn:
            await self._serve(event, turn)

    async def _serve(self, event: ResponseCreateEvent, turn: access.SocketTurn) -> None:
        """One response: begun as a streamed create is, then its events, each sent as it comes.
        The turn ends (and the next create is welcome) just before the terminal event leaves,
        so a client that answers that event at once never finds the connection busy."""
        try:
            try:
                started = await self._begin(event.create_request())
            except ApiError as exc:
                self._ended(None)
                turn.status = exc.status_code
                await self._tell(exc)
                return
            recorder = Recorder(self._responses)
            run = foreground.warm_up if event.warm_up else foreground.events
            events = run(started, recorder)
            async with aclosing(events):  # type: ignore[type-var]
                async for frame in events:
                    if frame["type"] in TERMINAL_EVENTS:
                        self._ended(continuation(started, recorder.outcome))
                    await self._send(encoder.encode(frame))
        except Gone:
            pass  # closing the events has cancelled the run: the response ends `cancelled`
        except Exception as exc:  # noqa: BLE001  (a bug of ours: said, and the socket stays usable)
            self._ended(None)
            turn.status = 500
            await self._tell(fault(exc, self._id))
        finally:
            self._ended(None)  # cancelled, or gone mid-stream (a no-op after the terminal event)

    async def _begin(self, request: CreateResponseRequest) -> Started:
        request = await self._prompts.apply(self._caller, request)
        history = self._kept_history(request)
        begun = asyncio.ensure_future(self._responses.begin(self._caller, request, history=history))
        try:
            return await asyncio.shield(begun)
        except asyncio.CancelledError:
            # The socket closed during unit of work #1, which is let finish rather than cut
            # short mid-transaction; the response then ends `cancelled`, as a stream closed
            # before its first event would.
            with contextlib.suppress(Exception):
                await self._responses.settle(await begun, outcomes.cancelled([]))
            raise

    def _kept_history(self, request: CreateResponseRequest) -> History | None:
        """The kept context, when the create continues the connection's last response."""
        last = self._last
        if last is None or request.previous_response_id != last.response_id:
            return None
        if request.store is not False:
            raise InvalidRequest(
                f"Previous response with id '{last.response_id}' was not stored, so a stored "
                "response cannot continue it (its history could not be rebuilt later). "
                "Continue it with 'store': false.",
                param="store",
                code="invalid_value",
            )
        return last.context

    def _ended(self, kept: Continuation | None) -> None:
        """The calling task's turn ends, once: a turn that ended leaves a later one alone."""
        if self._turn is asyncio.current_task() and self._in_flight:
            self._in_flight = False
            self._last = kept

    async def _send(self, frame: bytes) -> None:
        try:
            async with self._sending:
                await self._socket.send_text(frame.decode())
        except (WebSocketDisconnect, OSError) as exc:  # uvicorn's ClientDisconnected is one
            raise Gone from exc

    def _observed(self) -> AbstractContextManager[access.SocketTurn]:
        return access.socket_turn(self._id, ROUTE, self._caller.project_id)

    async def _refuse(self, exc: ApiError) -> None:
        """A create refused before it began (unreadable, or while one runs): logged and
        counted as the HTTP 4xx it would have been."""
        with self._observed() as turn:
            turn.status = exc.status_code
            await self._tell(exc)

    async def _tell(self, exc: ApiError) -> None:
        """An `error` event; a socket already closing is left to the reading loop to notice."""
        with contextlib.suppress(Gone):
            await self._send(error_frame(exc))


class Recorder:
    """The service as `foreground.events` sees it, noting the outcome it settles: the output
    a connection keeps for the next turn."""

    def __init__(self, service: ResponseService) -> None:
        self._service = service
        self.outcome: outcomes.Outcome | None = None

    @property
    def sealer(self) -> Sealer:
        return self._service.sealer

    def kept_alive(
        self, started: Started, on_lost: Callable[[], object] | None = None
    ) -> AbstractAsyncContextManager[None]:
        return self._service.kept_alive(started, on_lost)

    async def settle(self, started: Started, outcome: outcomes.Outcome) -> outcomes.Outcome:
        self.outcome = await self._service.settle(started, outcome)
        return self.outcome


def continuation(started: Started, outcome: outcomes.Outcome | None) -> Continuation | None:
    """What a next turn may continue from this one: the whole context of an unstored response
    that completed (or is incomplete). Nothing for a stored one, which is continued from the
    database as over HTTP, and nothing for a failed one (evicted, as at OpenAI)."""
    if outcome is None or outcome.status not in CONTINUABLE or started.store:
        return None
    encoding = started.fitter.encoding
    counts: list[int | None] = [*started.fitter.counts(outcome.output)]
    output = History(outcome.output, counts, encoding=encoding)
    context = History(encoding=encoding).followed_by(started.past, started.input, output)
    return Continuation(started.row.id, context)


def decode_create(data: str | bytes) -> ResponseCreateEvent:
    """A client event as the create it asks for, or the InvalidRequest OpenAI would send."""
    raw = data.encode() if isinstance(data, str) else data
    kind = codec.decode(raw, ClientEvent).type
    if kind == "response.steer":
        raise not_supported("type", "The 'response.steer' event")
    if kind != "response.create":
        raise invalid_value("type", kind, ["response.create"])
    event = codec.decode(raw, ResponseCreateEvent)
    if event.background:
        raise InvalidRequest(
            "Background responses are not supported in WebSocket mode: responses on a socket "
            "are streamed as they run. Create them with POST /v1/responses.",
            param="background",
            code="unsupported_parameter",
        )
    if event.stream_id is not None:
        raise not_supported("stream_id", "'stream_id' (WebSocket lanes)")
    return event


def in_flight() -> InvalidRequest:
    return InvalidRequest(
        "A response is already in progress on this connection. Wait for its terminal event "
        "(response.completed, response.incomplete or response.failed), or open another "
        "connection for responses in parallel.",
        code="response_already_in_flight",
    )


def error_frame(exc: ApiError) -> bytes:
    return encoder.encode(ErrorEvent(status=exc.status_code, error=exc.envelope().error))


def fault(exc: Exception, connection_id: str) -> ApiError:
    """A bug of ours (or a store that is down), logged by kind and id only."""
    log.error(
        "unhandled exception on a WebSocket",
        extra={"request_id": connection_id, "error_kind": type(exc).__name__},
    )
    return unexpected(connection_id)
