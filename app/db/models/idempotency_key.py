"""`idempotency_keys`: one row per (project, route, Idempotency-Key) — a create's first answer.

The primary key is the unique constraint that makes a concurrent second request with the same
key lose the race to insert: it gets the 409 (or, once the first is done, its answer). The
answer columns stay null while the first request runs. Rows expire 24 h after `created_at`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Json, UtcDateTime


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    project_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # The method and concrete path (`POST /v1/conversations/conv_…/items`): a key names one
    # create on one route, as Stripe scopes it.
    route: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    # sha256 of the request as it affects the answer: canonical body and query.
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # Set once the first request finished with an answer worth replaying.
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    media_type: Mapped[str | None] = mapped_column(sa.String(64))
    body: Mapped[str | None] = mapped_column(sa.Text)
    headers: Mapped[dict[str, Any] | None] = mapped_column(Json)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
