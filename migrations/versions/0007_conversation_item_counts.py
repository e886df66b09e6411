"""Each conversation item's token count (and encoding, and type) beside its place in the order.

A turn on a conversation reads only the items that fit the model's window, and finds the cut
from these counts with a window function over `conversation_items` alone — one index range of
a narrow table — before it joins `items` for the bodies of what it keeps. Rows written before
this revision get the counts their items have; where an item has none, the read falls back to
reading everything, as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation_items") as batch:
        batch.add_column(sa.Column("token_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("token_encoding", sa.String(16), nullable=True))
        batch.add_column(sa.Column("item_type", sa.String(40), nullable=True))
    op.execute(
        "UPDATE conversation_items SET token_count = items.token_count, "
        "token_encoding = items.token_encoding, item_type = items.type "
        "FROM items WHERE items.id = conversation_items.item_id"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversation_items") as batch:
        batch.drop_column("item_type")
        batch.drop_column("token_encoding")
        batch.drop_column("token_count")
