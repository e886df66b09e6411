"""Conversation use cases: create, read, update, delete, and their items. Free of HTTP and SQL.

Items added straight to a conversation are stored once in `items` (no response) and referenced
in order; deleting a conversation hides it but keeps its items, as OpenAI documents.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import ids
from app.auth import Caller
from app.context.assembly import item_tokens
from app.conversations import convert, repository
from app.db.base import utcnow
from app.db.models import Conversation as ConversationRow
from app.db.session import unit_of_work
from app.errors import NotFound
from app.pagination import PageRequest, object_list
from app.responses import references
from app.responses import repository as items_repository
from app.responses.validation import parse_input
from app.tokens.counting import TokenCounter
from app.tokens.models import FALLBACK_ENCODING
from app.wire.common import ObjectList
from app.wire.conversations import Conversation, ConversationDeleted
from app.wire.items import stored_body


def conversation_not_found(conversation_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"Conversation with id '{conversation_id}' not found.", param=param)


_FALLBACK_COUNTER = TokenCounter(FALLBACK_ENCODING)


class ConversationService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(
        self, caller: Caller, items: list[dict[str, Any]] | None, metadata: dict[str, str] | None
    ) -> Conversation:
        bodies = [stored_body(item) for item in parse_input(items or [], "items")]
        now = utcnow()
        row = ConversationRow(
            id=ids.new_id(ids.CONVERSATION),
            project_id=caller.project_id,
            metadata_=dict(metadata or {}),
            created_at=now,
        )
        async with unit_of_work(self._sessions) as session:
            await repository.insert(
                session,
                {
                    "id": row.id,
                    "project_id": row.project_id,
                    "metadata_": row.metadata_,
                    "created_at": now,
                    "next_seq": 0,
                },
            )
            bodies = await references.resolve(session, caller.project_id, bodies, "items")
            await self._store_items(session, caller, row.id, bodies)
        return convert.to_wire(row)

    async def retrieve(self, caller: Caller, conversation_id: str) -> Conversation:
        async with unit_of_work(self._sessions) as session:
            row = await self._owned(session, caller, conversation_id)
        return convert.to_wire(row)

    async def update(
        self, caller: Caller, conversation_id: str, metadata: dict[str, str] | None
    ) -> Conversation:
        async with unit_of_work(self._sessions) as session:
            row = await self._owned(session, caller, conversation_id)
            await repository.update_metadata(
                session, caller.project_id, conversation_id, dict(metadata or {})
            )
            row.metadata_ = dict(metadata or {})
        return convert.to_wire(row)

    async def delete(self, caller: Caller, conversation_id: str) -> ConversationDeleted:
        async with unit_of_work(self._sessions) as session:
            if not await repository.soft_delete(
                session, caller.project_id, conversation_id, utcnow()
            ):
                raise conversation_not_found(conversation_id)
        return ConversationDeleted(id=conversation_id)

    async def add_items(
        self, caller: Caller, conversation_id: str, items: list[dict[str, Any]]
    ) -> ObjectList:
        bodies = [stored_body(item) for item in parse_input(items, "items")]
        async with unit_of_work(self._sessions) as session:
            await self._owned(session, caller, conversation_id)
            bodies = await references.resolve(session, caller.project_id, bodies, "items")
            await self._store_items(session, caller, conversation_id, bodies)
        return object_list(bodies, len(bodies))

    async def list_items(
        self, caller: Caller, conversation_id: str, page: PageRequest
    ) -> ObjectList:
        async with unit_of_work(self._sessions) as session:
            await self._owned(session, caller, conversation_id)
            rows = await repository.page_items(session, conversation_id, page)
        if rows is None:
            raise NotFound(f"Item with id '{page.after}' not found.", param="after")
        return object_list(rows, page.limit)

    async def get_item(self, caller: Caller, conversation_id: str, item_id: str) -> dict[str, Any]:
        async with unit_of_work(self._sessions) as session:
            await self._owned(session, caller, conversation_id)
            body = await repository.get_item(session, conversation_id, item_id)
        if body is None:
            raise NotFound(f"Item with id '{item_id}' not found.")
        return body

    async def delete_item(self, caller: Caller, conversation_id: str, item_id: str) -> Conversation:
        """OpenAI answers an item deletion with the parent conversation."""
        async with unit_of_work(self._sessions) as session:
            row = await self._owned(session, caller, conversation_id)
            if not await repository.remove_item(session, conversation_id, item_id):
                raise NotFound(f"Item with id '{item_id}' not found.")
        return convert.to_wire(row)

    async def _owned(
        self, session: AsyncSession, caller: Caller, conversation_id: str
    ) -> ConversationRow:
        row = await repository.get(session, caller.project_id, conversation_id)
        if row is None:
            raise conversation_not_found(conversation_id)
        return row

    async def _store_items(
        self,
        session: AsyncSession,
        caller: Caller,
        conversation_id: str,
        bodies: list[dict[str, Any]],
    ) -> None:
        counts = [item_tokens(_FALLBACK_COUNTER, body) for body in bodies]
        encoding = _FALLBACK_COUNTER.encoding_name
        await items_repository.insert_items(
            session,
            project_id=caller.project_id,
            response_id=None,
            side=items_repository.INPUT,
            bodies=bodies,
            created_at=utcnow(),
            # No model is known yet: counted with the fallback encoding, recounted by a
            # response whose model uses another (the cache is keyed by encoding).
            token_counts=counts,
            token_encoding=encoding,
        )
        counted = [
            repository.Counted(count, encoding, body["type"])
            for body, count in zip(bodies, counts, strict=True)
        ]
        await repository.append(session, conversation_id, [body["id"] for body in bodies], counted)
