"""HTTP routes of the Responses API: decode, authenticate, call the service, encode.

Bodies are decoded by our own msgspec decoder rather than Litestar's, so that every malformed
or ill-typed body gets OpenAI's error object with the offending `param`.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from app.auth import Caller
from app.errors import not_supported
from app.http import include_param
from app.pagination import page_request
from app.responses import sse
from app.responses.service import ResponseService
from app.wire import codec
from app.wire.common import DeletedObject, ObjectList
from app.wire.responses import CreateResponseRequest, Response

AnyRequest = Request[Any, Any, Any]


class ResponsesController(Controller):
    path = "/v1/responses"
    tags = ["responses"]  # noqa: RUF012  (Litestar reads a class attribute)

    @post("/", status_code=200, summary="Create a model response")
    async def create(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        service: NamedDependency[ResponseService],
    ) -> Response | Stream:
        body = codec.decode(await request.body(), CreateResponseRequest)
        if body.stream:
            events = await service.create_stream(caller, body)
            return Stream(events, media_type="text/event-stream", headers=sse.HEADERS)
        return await service.create(caller, body)

    @get("/{response_id:str}", summary="Retrieve a model response")
    async def retrieve(
        self,
        request: AnyRequest,
        response_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[ResponseService],
    ) -> Response:
        include_param(request)
        if request.query_params.get("stream") == "true":
            raise not_supported("stream", "Streaming a stored response ('stream=true')")
        return await service.retrieve(caller, response_id)

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
