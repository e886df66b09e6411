"""Conversation row → wire object: the one place it is made."""

from __future__ import annotations

from app.db.models import Conversation as ConversationRow
from app.wire.conversations import Conversation


def to_wire(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id, created_at=int(row.created_at.timestamp()), metadata=row.metadata_ or {}
    )
