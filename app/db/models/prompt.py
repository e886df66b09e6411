"""`prompts`: prompt templates, one immutable row per (id, version)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Json, UtcDateTime


class Prompt(Base):
    __tablename__ = "prompts"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    instructions: Mapped[str | None] = mapped_column(sa.Text)
    input: Mapped[list[Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
