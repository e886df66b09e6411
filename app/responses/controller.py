"""HTTP routes of the Responses API: decode, authenticate, call the service, encode.

Bodies are decoded by our own msgspec decoder rather than Litestar's, so that every malformed
or ill-typed body gets OpenAI's error object with the offending `param`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from app.auth import Caller
from app.http import bool_param, check_path_ids, include_param, int_param
from app.idempotency.guard import IdempotentCreates
from app.pagination import page_request
from app.prompts.service import PromptService
from app.responses.background import BackgroundResponses
from app.responses.service import ResponseService
from app.responses.window_service import WindowService
from app.transports import sse
from app.wire import codec
from app.wire.common import DeletedObject, ObjectList
from app.wire.responses import CreateResponseRequest, Response
from app.wire.window import CompactedResponse, CompactRequest, InputTokens, InputTokensRequest

AnyRequest = Request[Any, Any, Any]


def _sse(events: AsyncIterator[bytes]) -> Stream:
    return Stream(events, media_type="text/event-stream", headers=sse.HEADERS)


class ResponsesController(Controller):
    path = "/v1/responses"
    tags = ["responses"]  # noqa: RUF012  (Litestar reads a class attribute)
    before_request = staticmethod(check_path_ids)

    @post("/", status_code=200, summary="Create a model response")
    async def create(self, request: AnyRequest, caller: NamedDependency[Caller]) -> Any:
        """The services come from the app's state, not as dependencies: Litestar resolves two
        or more dependencies of a handler in an anyio task group, a task for each, which on
        the busiest route cost about 1 % of its CPU and a turn of the loop per request."""
        state = request.app.state
        service: ResponseService = state.response_service
        background: BackgroundResponses = state.background
        prompts: PromptService = state.prompt_service
        idempotency: IdempotentCreates = state.idempotency

        async def create() -> Response | AsyncIterator[bytes]:
            decoded = await codec.decode_off_loop(await request.body(), CreateResponseRequest)
            body = await prompts.apply(caller, decoded)
            if body.background and body.stream:
                return await background.create_stream(caller, body)
            if body.background:
                return await background.create(caller, body)
            if body.stream:
                return await service.create_stream(caller, body)
            return await service.create(caller, body)

        return await idempotency.run(request, caller.project_id, create)

    @post("/input_tokens", status_code=200, summary="Count the input tokens of a request")
    async def input_tokens(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        windows: NamedDependency[WindowService],
    ) -> InputTokens:
        body = await codec.decode_off_loop(await request.body(), InputTokensRequest)
        return await windows.input_tokens(caller, body)

    @post("/compact", status_code=200, summary="Compact a conversation")
    async def compact(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        windows: NamedDependency[WindowService],
    ) -> CompactedResponse:
        body = codec.decode(await request.body(), CompactRequest)
        return await windows.compact(caller, body)

    @get("/{response_id:str}", summary="Retrieve a model response")
    async def retrieve(
        self,
        request: AnyRequest,
        response_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[ResponseService],
        background: NamedDependency[BackgroundResponses],
    ) -> Response | Stream:
        include_param(request)
        query = request.query_params
        if bool_param(query.get("stream"), "stream"):
            after = int_param(query.get("starting_after"), "starting_after", default=-1)
            obfuscate = bool_param(query.get("include_obfuscation"), "include_obfuscation", True)
            return _sse(await background.stream(caller, response_id, after, obfuscate))
        return await service.retrieve(caller, response_id)

    @post("/{response_id:str}/cancel", status_code=200, summary="Cancel a background response")
    async def cancel(
        self,
        response_id: FromPath[str],
        caller: NamedDependency[Caller],
        background: NamedDependency[BackgroundResponses],
    ) -> Response:
        return await background.cancel(caller, response_id)

    @delete("/{response_id:str}", status_code=200, summary="Delete a model response")
    async def remove(
        self,
        response_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[ResponseService],
    ) -> DeletedObject:
        return await service.delete(caller, response_id)

    @get("/{response_id:str}/input_items", summary="List the input items of a response")
    async def input_items(
        self,
        request: AnyRequest,
        response_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[ResponseService],
        limit: FromQuery[str | None] = None,
        order: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
    ) -> ObjectList:
        include_param(request)
        page = page_request(limit, order, after, before)
        return await service.list_input_items(caller, response_id, page)
