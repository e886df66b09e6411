"""The Conversations API's bodies and objects, as OpenAI's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.wire.common import Metadata

MAX_ITEMS_PER_CALL = 20
ItemList = Annotated[list[dict[str, Any]], msgspec.Meta(max_length=MAX_ITEMS_PER_CALL)]


class CreateConversationRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    items: ItemList | None = None
    metadata: Metadata | None = None


class UpdateConversationRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`metadata` is required and replaces the whole map; null clears it."""

    metadata: Metadata | None


class AddItemsRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    items: ItemList


class Conversation(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: dict[str, str]


class ConversationDeleted(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True
