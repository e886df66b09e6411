"""Core tables: api keys, responses, items, conversations.

Items are stored once; conversations order them by reference (conversation_items).

Revision ID: 0001
Revises:
Create Date: 2026-11-24 17:44:47.703739
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('display_prefix', sa.String(length=40), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('secret_sha256', name=op.f('uq_api_keys_secret_sha256'))
    )
    op.create_index(op.f('ix_api_keys_project_id'), 'api_keys', ['project_id'], unique=False)
    op.create_table('conversations',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('metadata', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations'))
    )
    op.create_index(op.f('ix_conversations_project_id'), 'conversations', ['project_id'], unique=False)
    op.create_table('responses',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('background', sa.Boolean(), nullable=False),
    sa.Column('previous_response_id', sa.String(length=64), nullable=True),
    sa.Column('conversation_id', sa.String(length=64), nullable=True),
    sa.Column('params', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('instructions', sa.Text(), nullable=True),
    sa.Column('metadata', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('usage', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('error', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('incomplete_details', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_responses'))
    )
    op.create_index('ix_responses_previous_response_id', 'responses', ['previous_response_id'], unique=False)
    op.create_index('ix_responses_project_created', 'responses', ['project_id', 'created_at'], unique=False)
    op.create_index('ix_responses_status_active', 'responses', ['status'], unique=False, postgresql_where=sa.text("status IN ('queued', 'in_progress')"), sqlite_where=sa.text("status IN ('queued', 'in_progress')"))
    op.create_table('items',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('response_id', sa.String(length=64), nullable=True),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('body', sa.JSON(none_as_null=True), nullable=False),
    sa.Column('token_count', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['response_id'], ['responses.id'], name=op.f('fk_items_response_id_responses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_items')),
    sa.UniqueConstraint('response_id', 'side', 'position', name='uq_items_response_side_position')
    )
    op.create_index('ix_items_project_id', 'items', ['project_id'], unique=False)
    op.create_table('conversation_items',
    sa.Column('conversation_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('item_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_conversation_items_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_conversation_items_item_id_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', 'seq', name=op.f('pk_conversation_items'))
    )
    op.create_index(op.f('ix_conversation_items_item_id'), 'conversation_items', ['item_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_conversation_items_item_id'), table_name='conversation_items')
    op.drop_table('conversation_items')
    op.drop_index('ix_items_project_id', table_name='items')
    op.drop_table('items')
    op.drop_index('ix_responses_status_active', table_name='responses', postgresql_where=sa.text("status IN ('queued', 'in_progress')"), sqlite_where=sa.text("status IN ('queued', 'in_progress')"))
    op.drop_index('ix_responses_project_created', table_name='responses')
    op.drop_index('ix_responses_previous_response_id', table_name='responses')
    op.drop_table('responses')
    op.drop_index(op.f('ix_conversations_project_id'), table_name='conversations')
    op.drop_table('conversations')
    op.drop_index(op.f('ix_api_keys_project_id'), table_name='api_keys')
    op.drop_table('api_keys')
