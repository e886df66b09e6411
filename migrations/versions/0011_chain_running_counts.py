"""Running token counts on chains, so a create on a deep chain walks what fits, not the chain.

The chain read walked every ancestor by primary key and summed every item newest first to find
the cut (a 1,000-deep chain cost twice a 1-deep one). Each response now carries the tokens of
its chain through its own output (`chain_tokens`, in `chain_encoding`), written once when it
ends: the walk stops at the first ancestor whose newer items already fill the budget.

Existing rows keep null, which the read takes as "walk everything" — the old behaviour — for
one turn: that turn's read sums the whole chain anyway, and the response it makes starts its
own count from that total (app/context/history.py, `stored_total`), so an old chain heals on
its next turn. Nothing is backfilled here: a recursive sum over every stored chain would hold
a large `responses` table for minutes, most of it chains nobody continues.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("chain_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("chain_encoding", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("chain_encoding")
        batch.drop_column("chain_tokens")
