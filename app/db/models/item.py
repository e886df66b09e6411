"""`items`: every input and output item, stored once, with its wire body as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Json, UtcDateTime


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        # The context read: all items of a set of responses in (side, position) order.
        sa.UniqueConstraint(
            "response_id", "side", "position", name="uq_items_response_side_position"
        ),
        sa.Index("ix_items_project_id", "project_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64))
    response_id: Mapped[str | None] = mapped_column(
        sa.String(64), sa.ForeignKey("responses.id", ondelete="CASCADE")
    )
    side: Mapped[str] = mapped_column(sa.String(8))
    position: Mapped[int] = mapped_column(sa.Integer)
    type: Mapped[str] = mapped_column(sa.String(40))
    body: Mapped[dict[str, Any]] = mapped_column(Json)
    # Filled when the item is written, counted with `token_encoding` (see app/tokens/).
    token_count: Mapped[int | None] = mapped_column(sa.Integer)
    token_encoding: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
