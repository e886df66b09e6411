"""Conversation seq counter and lease: appends hand out seq ranges; one response at a time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("next_seq", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("active_response_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_responses_conversation_id", "responses", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_responses_conversation_id", table_name="responses")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("active_response_id")
        batch.drop_column("next_seq")
