"""The encoding an item's cached token count was made with.

A count is only reused for a model of the same encoding; an item written for a gpt-4 (cl100k)
model and replayed to an o200k model is counted again, so the cache never makes a count wrong.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("token_encoding", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("token_encoding")
