"""`conversations` and `conversation_items`: a conversation's order of items, by reference."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Json, UtcDateTime


class Conversation(Base):
    __tablename__ = "conversations"
    # The console lists a project's conversations newest first (migration 0008).
    __table_args__ = (sa.Index("ix_conversations_project_created", "project_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The seq the next appended item gets: an UPDATE … RETURNING on this column hands out seq
    # ranges atomically, so concurrent appends never collide on (conversation_id, seq).
    next_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # The conversation lock: the response running on it and until when its lease holds. The
    # holder renews the lease while it runs; a holder that dies lets it lapse by itself.
    active_response_id: Mapped[str | None] = mapped_column(sa.String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Running facts about the items, kept by every append and removal (migration 0010), so a
    # turn finds where its context starts without reading the whole order: the sum of the
    # items' cached counts, the encoding they are counted in (the first counted item's), and
    # how many items spoil a cut by count (no count, another encoding, or a compaction).
    tokens_total: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    token_encoding: Mapped[str | None] = mapped_column(sa.String(16))
    uncountable_items: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")


class ConversationItem(Base):
    __tablename__ = "conversation_items"

    conversation_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    item_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("items.id", ondelete="CASCADE"), index=True
    )
    # Copies of the item's cached count, its encoding and its type, so that the cut of a
    # conversation's context is found in this narrow table (app/context/repository.py).
    token_count: Mapped[int | None] = mapped_column(sa.Integer)
    token_encoding: Mapped[str | None] = mapped_column(sa.String(16))
    item_type: Mapped[str | None] = mapped_column(sa.String(40))
    # The sum of the counts of the conversation's earlier items: non-decreasing in seq, so the
    # first item that fits a budget is found by walking back from the newest (migration 0010).
    tokens_before: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
