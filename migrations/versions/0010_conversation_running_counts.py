"""Running token counts on conversations, so a turn's cut costs what fits, not the history.

0007 let the cut be found in `conversation_items` alone, but still with a window function over
every one of the conversation's rows (≈ 12 ms at 10,000 items on Postgres). Each row now also
carries `tokens_before` (the sum of the counts of the items before it) and the conversation
carries the facts the cut needs (the total, the encoding of the counts, and how many items
spoil a cut by count), all kept by appends and removals: the cut is one backward index walk
from the newest item over what fits. Existing rows get the values their counts give.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("tokens_total", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("token_encoding", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("uncountable_items", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("conversation_items") as batch:
        batch.add_column(
            sa.Column("tokens_before", sa.BigInteger(), nullable=False, server_default="0")
        )
    # UPDATE … FROM and window functions: Postgres, and SQLite since 3.33.
    op.execute(
        "UPDATE conversation_items SET tokens_before = running.before "
        "FROM (SELECT conversation_id, seq, COALESCE(SUM(token_count) OVER ("
        "PARTITION BY conversation_id ORDER BY seq "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before "
        "FROM conversation_items) AS running "
        "WHERE running.conversation_id = conversation_items.conversation_id "
        "AND running.seq = conversation_items.seq"
    )
    op.execute(
        "UPDATE conversations SET "
        "tokens_total = COALESCE((SELECT SUM(token_count) FROM conversation_items AS link "
        "WHERE link.conversation_id = conversations.id), 0), "
        "token_encoding = (SELECT token_encoding FROM conversation_items AS link "
        "WHERE link.conversation_id = conversations.id AND link.token_count IS NOT NULL "
        "ORDER BY link.seq LIMIT 1)"
    )
    op.execute(
        "UPDATE conversations SET uncountable_items = (SELECT COUNT(*) "
        "FROM conversation_items AS link WHERE link.conversation_id = conversations.id "
        "AND (link.token_count IS NULL OR link.item_type = 'compaction' "
        "OR link.token_encoding IS NULL OR link.token_encoding <> conversations.token_encoding))"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversation_items") as batch:
        batch.drop_column("tokens_before")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("uncountable_items")
        batch.drop_column("token_encoding")
        batch.drop_column("tokens_total")
