"""HTTP routes of the Conversations API (eight routes; OpenAI has no list-conversations route)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from app.auth import Caller
from app.conversations.service import ConversationService
from app.http import check_path_ids, include_param
from app.idempotency.guard import IdempotentCreates
from app.pagination import page_request
from app.wire import codec
from app.wire.common import ObjectList
from app.wire.conversations import (
    AddItemsRequest,
    Conversation,
    ConversationDeleted,
    CreateConversationRequest,
    UpdateConversationRequest,
)

AnyRequest = Request[Any, Any, Any]
Service = NamedDependency[ConversationService]


class ConversationsController(Controller):
    path = "/v1/conversations"
    tags = ["conversations"]  # noqa: RUF012  (Litestar reads a class attribute)
    before_request = staticmethod(check_path_ids)

    @post("/", status_code=200, summary="Create a conversation")
    async def create(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        conversations: Service,
        idempotency: NamedDependency[IdempotentCreates],
    ) -> Any:
        async def create() -> Conversation:
            body = codec.decode(await request.body(), CreateConversationRequest)
            return await conversations.create(caller, body.items, body.metadata)

        return await idempotency.run(request, caller.project_id, create)

    @get("/{conversation_id:str}", summary="Retrieve a conversation")
    async def retrieve(
        self,
        conversation_id: FromPath[str],
        caller: NamedDependency[Caller],
        conversations: Service,
    ) -> Conversation:
        return await conversations.retrieve(caller, conversation_id)

    @post("/{conversation_id:str}", status_code=200, summary="Update a conversation's metadata")
    async def update(
        self,
        request: AnyRequest,
        conversation_id: FromPath[str],
        caller: NamedDependency[Caller],
        conversations: Service,
    ) -> Conversation:
        body = codec.decode(await request.body(), UpdateConversationRequest)
        return await conversations.update(caller, conversation_id, body.metadata)

    @delete("/{conversation_id:str}", status_code=200, summary="Delete a conversation")
    async def remove(
        self,
        conversation_id: FromPath[str],
        caller: NamedDependency[Caller],
        conversations: Service,
    ) -> ConversationDeleted:
        return await conversations.delete(caller, conversation_id)

    @post("/{conversation_id:str}/items", status_code=200, summary="Add items")
    async def add_items(
        self,
        request: AnyRequest,
        conversation_id: FromPath[str],
        caller: NamedDependency[Caller],
        conversations: Service,
        idempotency: NamedDependency[IdempotentCreates],
    ) -> Any:
        include_param(request)

        async def add() -> ObjectList:
            body = codec.decode(await request.body(), AddItemsRequest)
            return await conversations.add_items(caller, conversation_id, body.items)

        return await idempotency.run(request, caller.project_id, add)

    @get("/{conversation_id:str}/items", summary="List items")
    async def list_items(
        self,
        request: AnyRequest,
        conversation_id: FromPath[str],
        caller: NamedDependency[Caller],
        conversations: Service,
        limit: FromQuery[str | None] = None,
        order: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
    ) -> ObjectList:
        include_param(request)
        page = page_request(limit, order, after, None)
        return await conversations.list_items(caller, conversation_id, page)

    @get("/{conversation_id:str}/items/{item_id:str}", summary="Retrieve an item")
    async def get_item(
        self,
        request: AnyRequest,
        conversation_id: FromPath[str],
        item_id: FromPath[str],
        caller: NamedDependency[Caller],
        conversations: Service,
    ) -> dict[str, Any]:
        include_param(request)
        return await conversations.get_item(caller, conversation_id, item_id)

    @delete("/{conversation_id:str}/items/{item_id:str}", status_code=200, summary="Delete an item")
    async def delete_item(
        self,
        conversation_id: FromPath[str],
        item_id: FromPath[str],
        caller: NamedDependency[Caller],
        conversations: Service,
    ) -> Conversation:
        return await conversations.delete_item(caller, conversation_id, item_id)
