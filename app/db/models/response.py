"""`responses`: one row per stored response; its items live in `items`, never inline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Json, UtcDateTime


class ResponseRow(Base):
    __tablename__ = "responses"
    __table_args__ = (
        sa.Index("ix_responses_project_created", "project_id", "created_at"),
        sa.Index("ix_responses_previous_response_id", "previous_response_id"),
        sa.Index("ix_responses_conversation_id", "conversation_id"),
        sa.Index(
            "ix_responses_status_active",
            "status",
            postgresql_where=sa.text("status IN ('queued', 'in_progress')"),
            sqlite_where=sa.text("status IN ('queued', 'in_progress')"),
        ),
        # The console's filters and pages (migration 0008; on Postgres also a GIN index on
        # CAST(metadata AS JSONB), which has no portable spelling here).
        sa.Index("ix_responses_project_status_created", "project_id", "status", "created_at"),
        sa.Index("ix_responses_project_model_created", "project_id", "model", "created_at"),
        sa.Index(
            "ix_responses_project_background",
            "project_id",
            "created_at",
            postgresql_where=sa.text("background"),
            sqlite_where=sa.text("background = 1"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64))
    # The gateway key that created it (null before migration 0008): usage per key.
    key_id: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    model: Mapped[str] = mapped_column(sa.String(200))
    background: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    previous_response_id: Mapped[str | None] = mapped_column(sa.String(64))
    conversation_id: Mapped[str | None] = mapped_column(sa.String(64))
    # The echoed request parameters (temperature, tools, text, …) exactly as the Response shows
    # them; one JSON column rather than twenty, since they are only ever read back whole.
    params: Mapped[dict[str, Any]] = mapped_column(Json)
    instructions: Mapped[str | None] = mapped_column(sa.Text)
    # The create body (less `input`, which is stored as items) of a background response: the
    # worker rebuilds the generation from it, possibly in another process, after a crash.
    request: Mapped[dict[str, Any] | None] = mapped_column(Json)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", Json)
    usage: Mapped[dict[str, Any] | None] = mapped_column(Json)
    error: Mapped[dict[str, Any] | None] = mapped_column(Json)
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    # The tokens of its chain through this response's output: its ancestors' items and its
    # own, counted in `chain_encoding` (migration 0011). Written when it ends; null where a
    # count is missing, in another encoding or a compaction is in the chain, and then the
    # chain read walks every ancestor. Set, it lets the walk stop at the window.
    chain_tokens: Mapped[int | None] = mapped_column(sa.BigInteger)
    chain_encoding: Mapped[str | None] = mapped_column(sa.String(16))
    # Deleting hides a response from every route but keeps its items, because later responses
    # in its chain and conversations still reference them.
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
