"""Conversations as the console reads them: newest-first pages and one conversation's items.

The list walks (project_id, created_at) (migration 0008); a conversation's items are a range
of its (conversation_id, seq) primary key joined to `items`, so a conversation of 100,000 items
costs a page's worth per page. `next_seq` says how many items were ever appended, without a
count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Conversation, ConversationItem, Item
from app.db.scoping import owned

LIST_COLUMNS = (
    Conversation.id,
    Conversation.created_at,
    Conversation.metadata_,
    Conversation.next_seq,
    Conversation.active_response_id,
)


async def page(
    session: AsyncSession, project_id: str, *, after: str | None, limit: int
) -> tuple[list[sa.Row[Any]], bool] | None:
    """Up to `limit` conversations older than `after`, newest first, and whether more follow;
    None when `after` is not a conversation of this project."""
    statement = owned(sa.select(*LIST_COLUMNS), Conversation, project_id)
    if after is not None:
        cursor = await _cursor(session, project_id, after)
        if cursor is None:
            return None
        position = sa.tuple_(Conversation.created_at, Conversation.id)
        statement = statement.where(Conversation.created_at <= cursor[0], position < cursor)
    order = (Conversation.created_at.desc(), Conversation.id.desc())
    rows = list(await session.execute(statement.order_by(*order).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


async def _cursor(
    session: AsyncSession, project_id: str, conversation_id: str
) -> tuple[datetime, str] | None:
    statement = owned(sa.select(Conversation.created_at), Conversation, project_id)
    created_at = await session.scalar(statement.where(Conversation.id == conversation_id))
    return None if created_at is None else (created_at, conversation_id)


async def get(session: AsyncSession, project_id: str, conversation_id: str) -> sa.Row[Any] | None:
    statement = owned(sa.select(*LIST_COLUMNS), Conversation, project_id)
    found = await session.execute(statement.where(Conversation.id == conversation_id))
    row: sa.Row[Any] | None = found.first()
    return row


async def items(
    session: AsyncSession, conversation_id: str, after_seq: int, limit: int
) -> list[sa.Row[Any]]:
    """`limit + 1` of the conversation's items in order past `after_seq`: seq, the response
    that wrote each (null for items added straight to the conversation) and its body."""
    statement = (
        sa.select(ConversationItem.seq, Item.response_id, Item.body)
        .join(Item, Item.id == ConversationItem.item_id)
        .where(
            ConversationItem.conversation_id == conversation_id, ConversationItem.seq > after_seq
        )
        .order_by(ConversationItem.seq)
        .limit(limit + 1)
    )
    return list(await session.execute(statement))
