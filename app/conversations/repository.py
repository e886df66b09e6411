"""All SQL of conversations: rows, the ordered item references, and the conversation lease.

A conversation's order lives in `conversation_items` (seq → item id); items themselves are
stored once in `items`. Reading a conversation's context is one keyset range read over the
(conversation_id, seq) primary key joined to `items`, started where the running counts kept
here (each row's `tokens_before`, the conversation's totals) say the window begins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Conversation, ConversationItem, Item
from app.db.scoping import owned, owned_row
from app.pagination import PageRequest

COMPACTION = "compaction"  # an item that replaces earlier ones: counts cannot cut past it


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(Conversation), [values])


async def get(session: AsyncSession, project_id: str, conversation_id: str) -> Conversation | None:
    statement = owned_row(sa.select(Conversation), Conversation, project_id, conversation_id)
    row: Conversation | None = await session.scalar(statement)
    return row


async def update_metadata(
    session: AsyncSession, project_id: str, conversation_id: str, metadata: dict[str, str]
) -> bool:
    result = await session.execute(
        owned(sa.update(Conversation), Conversation, project_id)
        .where(Conversation.id == conversation_id)
        .values(metadata_=metadata)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def soft_delete(
    session: AsyncSession, project_id: str, conversation_id: str, at: datetime
) -> bool:
    result = await session.execute(
        owned(sa.update(Conversation), Conversation, project_id)
        .where(Conversation.id == conversation_id)
        .values(deleted_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


class Counted(NamedTuple):
    """What a conversation keeps of an item beside its place: its cached count, the count's
    encoding and its type (what the context read cuts by)."""

    token_count: int | None = None
    token_encoding: str | None = None
    item_type: str | None = None


async def append(
    session: AsyncSession,
    conversation_id: str,
    item_ids: Sequence[str],
    counted: Sequence[Counted] | None = None,
    *,
    releasing: str | None = None,
) -> bool:
    """Append item references in order. One UPDATE … RETURNING hands out the seq range and
    moves the conversation's running counts on (so concurrent appends never collide on
    (conversation_id, seq)); each row gets the tokens of everything before it.

    With `releasing` (a response ending its turn), the same UPDATE appends only while that
    response or none holds the conversation, and gives up that response's lease: a lock read,
    an append and a release in one statement. False when another response holds it (nothing
    is appended: a run whose lease lapsed must not interleave its turn with the new holder's)."""
    if not item_ids:
        if releasing is not None:
            await release_lease(session, conversation_id, releasing)
        return True
    counted = counted or [Counted()] * len(item_ids)
    batch = _Batch.of(counted)
    statement = (
        sa.update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(
            next_seq=Conversation.next_seq + len(item_ids),
            tokens_total=Conversation.tokens_total + batch.tokens,
            token_encoding=sa.func.coalesce(Conversation.token_encoding, batch.encoding),
            uncountable_items=Conversation.uncountable_items
            + batch.spoilers
            + sa.case((Conversation.token_encoding != batch.encoding, batch.counted), else_=0),
        )
        .returning(Conversation.next_seq, Conversation.tokens_total)
    )
    if releasing is not None:
        held_by_it = Conversation.active_response_id == releasing
        statement = statement.where(
            sa.or_(held_by_it, Conversation.active_response_id.is_(None))
        ).values(
            active_response_id=sa.null(),
            lease_expires_at=sa.case((held_by_it, sa.null()), else_=Conversation.lease_expires_at),
        )
    returned = (await session.execute(statement)).first()
    if returned is None:
        assert releasing is not None  # the caller has just read this conversation
        return False
    start, before = returned[0] - len(item_ids), returned[1] - batch.tokens
    rows = []
    for offset, (item_id, entry) in enumerate(zip(item_ids, counted, strict=True)):
        rows.append(
            {
                "conversation_id": conversation_id,
                "seq": start + offset,
                "item_id": item_id,
                "tokens_before": before,
                **entry._asdict(),
            }
        )
        before += entry.token_count or 0
    await session.execute(sa.insert(ConversationItem), rows)
    return True


class _Batch(NamedTuple):
    """What one append adds to the conversation's running counts. Its encoding is its first
    counted item's; items without a count, in another encoding or compactions spoil a cut."""

    tokens: int
    encoding: str | None
    counted: int  # items counted in `encoding` (spoilers too, should the conversation's differ)
    spoilers: int

    @classmethod
    def of(cls, counted: Sequence[Counted]) -> _Batch:
        encoding = next((c.token_encoding for c in counted if c.token_count is not None), None)
        fine = sum(
            1
            for c in counted
            if c.token_count is not None
            and c.token_encoding == encoding
            and c.item_type != COMPACTION
        )
        tokens = sum(c.token_count or 0 for c in counted)
        return cls(tokens, encoding, fine, len(counted) - fine)


async def page_items(
    session: AsyncSession, conversation_id: str, page: PageRequest
) -> list[dict[str, Any]] | None:
    """`limit + 1` item bodies past the cursor; None when the cursor is not in this conversation."""
    statement = (
        sa.select(Item.body)
        .join(ConversationItem, ConversationItem.item_id == Item.id)
        .where(ConversationItem.conversation_id == conversation_id)
    )
    descending = page.order == "desc"
    if page.after is not None:
        seq = await _seq_of(session, conversation_id, page.after)
        if seq is None:
            return None
        statement = statement.where(
            ConversationItem.seq < seq if descending else ConversationItem.seq > seq
        )
    order = ConversationItem.seq.desc() if descending else ConversationItem.seq.asc()
    rows = await session.scalars(statement.order_by(order).limit(page.limit + 1))
    return list(rows)


async def get_item(
    session: AsyncSession, conversation_id: str, item_id: str
) -> dict[str, Any] | None:
    body: dict[str, Any] | None = await session.scalar(
        sa.select(Item.body)
        .join(ConversationItem, ConversationItem.item_id == Item.id)
        .where(ConversationItem.conversation_id == conversation_id, Item.id == item_id)
        .limit(1)
    )
    return body


async def remove_item(session: AsyncSession, conversation_id: str, item_id: str) -> bool:
    """Drop the reference; the item itself stays (a response may still list it as input).
    The running counts are taken back: later rows' `tokens_before` and the conversation's
    totals (a removal is rare; this is the one write that touches every later row)."""
    removed = (
        await session.execute(
            sa.delete(ConversationItem)
            .where(
                ConversationItem.conversation_id == conversation_id,
                ConversationItem.item_id == item_id,
            )
            .returning(
                ConversationItem.seq,
                ConversationItem.token_count,
                ConversationItem.token_encoding,
                ConversationItem.item_type,
            )
        )
    ).all()
    for seq, count, encoding, item_type in removed:
        await session.execute(
            sa.update(ConversationItem)
            .where(ConversationItem.conversation_id == conversation_id, ConversationItem.seq > seq)
            .values(tokens_before=ConversationItem.tokens_before - (count or 0))
        )
        spoiled = sa.or_(
            sa.literal(count is None or item_type == COMPACTION),
            Conversation.token_encoding.is_distinct_from(encoding),
        )
        await session.execute(
            sa.update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(
                tokens_total=Conversation.tokens_total - (count or 0),
                uncountable_items=Conversation.uncountable_items - sa.case((spoiled, 1), else_=0),
            )
        )
    return bool(removed)


async def acquire_lease(
    session: AsyncSession, conversation_id: str, response_id: str, now: datetime, seconds: float
) -> bool:
    """Take the conversation for `response_id` unless a live lease is held by another."""
    result = await session.execute(
        sa.update(Conversation)
        .where(
            Conversation.id == conversation_id,
            sa.or_(
                Conversation.active_response_id.is_(None),
                Conversation.active_response_id == response_id,
                Conversation.lease_expires_at < now,
            ),
        )
        .values(active_response_id=response_id, lease_expires_at=now + timedelta(seconds=seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def renew_lease(
    session: AsyncSession, conversation_id: str, response_id: str, until: datetime
) -> bool:
    result = await session.execute(
        sa.update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.active_response_id == response_id)
        .values(lease_expires_at=until)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_lease(session: AsyncSession, conversation_id: str, response_id: str) -> None:
    await session.execute(
        sa.update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.active_response_id == response_id)
        .values(active_response_id=None, lease_expires_at=None)
    )


async def _seq_of(session: AsyncSession, conversation_id: str, item_id: str) -> int | None:
    seq: int | None = await session.scalar(
        sa.select(ConversationItem.seq).where(
            ConversationItem.conversation_id == conversation_id,
            ConversationItem.item_id == item_id,
        )
    )
    return seq
