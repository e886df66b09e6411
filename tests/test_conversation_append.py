"""A turn's ending on a conversation: the append, the check of who holds the conversation and
the release of its lease are one UPDATE (app/conversations/repository.py `append(releasing=)`),
on Postgres and on SQLite."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations import repository as conversations
from app.db.base import utcnow
from app.db.models import Conversation, ConversationItem
from app.db.session import unit_of_work
from app.responses import repository, together


async def conversation_held_by(
    sessions: async_sessionmaker[AsyncSession], holder: str | None
) -> tuple[str, list[str]]:
    """A conversation (held by `holder`, its lease running) and two stored items to append."""
    conversation_id = f"conv_{secrets.token_hex(8)}"
    now = utcnow()
    response_id = f"resp_{secrets.token_hex(8)}"
    bodies = [
        {"id": f"msg_{secrets.token_hex(8)}", "type": "message", "role": "user", "content": []}
        for _ in range(2)
    ]
    async with unit_of_work(sessions) as session:
        await conversations.insert(
            session,
            {
                "id": conversation_id,
                "project_id": "proj_append",
                "metadata_": {},
                "created_at": now,
                "active_response_id": holder,
                "lease_expires_at": now + timedelta(minutes=5) if holder else None,
            },
        )
        await together.insert_response_with_items(
            session,
            {
                "id": response_id,
                "project_id": "proj_append",
                "status": "in_progress",
                "model": "test-model",
                "background": False,
                "params": {},
                "metadata": {},
                "created_at": now,
                "heartbeat_at": now,
                "attempts": 1,
            },
            together.NewItems("proj_append", response_id, repository.INPUT, bodies, now),
        )
    return conversation_id, [body["id"] for body in bodies]


async def state(sessions: async_sessionmaker[AsyncSession], conversation_id: str) -> Any:
    async with sessions() as session:
        row = (
            await session.execute(
                sa.select(
                    Conversation.active_response_id,
                    Conversation.lease_expires_at,
                    Conversation.next_seq,
                ).where(Conversation.id == conversation_id)
            )
        ).one()
        appended = list(
            await session.scalars(
                sa.select(ConversationItem.item_id)
                .where(ConversationItem.conversation_id == conversation_id)
                .order_by(ConversationItem.seq)
            )
        )
    return row.active_response_id, row.lease_expires_at, row.next_seq, appended


@pytest.mark.parametrize(
    ("holder", "releasing"),
    [("resp_holder", "resp_holder"), (None, "resp_late")],
    ids=["the holder gives it up", "no one holds it"],
)
async def test_a_turn_is_appended_and_the_conversation_given_up(
    store: async_sessionmaker[AsyncSession], holder: str | None, releasing: str
) -> None:
    conversation_id, items = await conversation_held_by(store, holder)
    async with unit_of_work(store) as session:
        assert await conversations.append(session, conversation_id, items, releasing=releasing)
    assert await state(store, conversation_id) == (None, None, 2, items)


async def test_a_run_whose_lease_was_taken_over_appends_nothing_and_releases_nothing(
    store: async_sessionmaker[AsyncSession],
) -> None:
    conversation_id, items = await conversation_held_by(store, "resp_new_holder")
    before = await state(store, conversation_id)
    async with unit_of_work(store) as session:
        assert not await conversations.append(
            session, conversation_id, items, releasing="resp_lapsed"
        )
    assert await state(store, conversation_id) == before
    holder, lease, next_seq, appended = before
    assert (holder, next_seq, appended) == ("resp_new_holder", 0, [])
    assert lease is not None


async def test_an_empty_turn_still_gives_the_conversation_up(
    store: async_sessionmaker[AsyncSession],
) -> None:
    conversation_id, _ = await conversation_held_by(store, "resp_holder")
    async with unit_of_work(store) as session:
        assert await conversations.append(session, conversation_id, [], releasing="resp_holder")
    assert await state(store, conversation_id) == (None, None, 0, [])
