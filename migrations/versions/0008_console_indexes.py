"""The web console's reads: the key a response was made with, and indexes for its filters.

`key_id` lets usage be charted per key (null for responses stored before this revision). The
indexes keep the console's newest-first pages keyset reads on a project with millions of
responses: one per filter that a plain (project_id, created_at) scan would have to wade
through (a rare status, a rare model), one for a project's background responses (few among
many), one for conversations newest first, and on Postgres a GIN index for metadata search.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_responses_project_status_created", "responses", ["project_id", "status", "created_at"]
    )
    op.create_index(
        "ix_responses_project_model_created", "responses", ["project_id", "model", "created_at"]
    )
    op.create_index(
        "ix_responses_project_background",
        "responses",
        ["project_id", "created_at"],
        postgresql_where=sa.text("background"),
        sqlite_where=sa.text("background = 1"),
    )
    op.create_index(
        "ix_conversations_project_created", "conversations", ["project_id", "created_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        # `metadata` is JSON text (see app/db/base.py); the index is on its jsonb reading, which
        # the console's `CAST(metadata AS JSONB) @> …` search matches.
        op.execute(
            "CREATE INDEX ix_responses_metadata ON responses "
            "USING gin ((CAST(metadata AS JSONB)) jsonb_path_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_responses_metadata")
    op.drop_index("ix_conversations_project_created", table_name="conversations")
    op.drop_index("ix_responses_project_background", table_name="responses")
    op.drop_index("ix_responses_project_model_created", table_name="responses")
    op.drop_index("ix_responses_project_status_created", table_name="responses")
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("key_id")
