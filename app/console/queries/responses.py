"""Responses as the console reads them: filtered newest-first pages, one response, its chain.

List pages select only the columns a row shows (never `params` or `request`) and walk an index
backwards from a cursor: (project_id, created_at) by default, (project_id, status|model,
created_at) under those filters, the conversation index under a conversation, the GIN index
on Postgres for a metadata search (migration 0008). Keyset predicates repeat `created_at` on
its own beside the (created_at, id) row comparison, so the planner can bound the index scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.filters import ResponseFilters
from app.db.models import Item, ResponseRow
from app.db.scoping import owned

LIST_COLUMNS = (
    ResponseRow.id,
    ResponseRow.status,
    ResponseRow.model,
    ResponseRow.background,
    ResponseRow.created_at,
    ResponseRow.completed_at,
    ResponseRow.usage,
    ResponseRow.conversation_id,
    ResponseRow.previous_response_id,
    ResponseRow.key_id,
)
CHAIN_DEPTH = 50
MAX_MODELS = 200


async def page(
    session: AsyncSession,
    project_id: str,
    filters: ResponseFilters,
    *,
    after: str | None,
    before: str | None,
    limit: int,
) -> tuple[list[sa.Row[Any]], bool] | None:
    """Up to `limit` rows newest first — older than `after`, or the ones just newer than
    `before` — and whether more lie that way; None when the cursor is not this project's."""
    statement = _filtered(
        owned(sa.select(*LIST_COLUMNS), ResponseRow, project_id), filters, _dialect(session)
    )
    newer = after is None and before is not None
    cursor_id = after or before
    if cursor_id is not None:
        cursor = await _cursor(session, project_id, cursor_id)
        if cursor is None:
            return None
        position = sa.tuple_(ResponseRow.created_at, ResponseRow.id)
        if newer:
            statement = statement.where(ResponseRow.created_at >= cursor[0], position > cursor)
        else:
            statement = statement.where(ResponseRow.created_at <= cursor[0], position < cursor)
    if newer:
        order = (ResponseRow.created_at.asc(), ResponseRow.id.asc())
    else:
        order = (ResponseRow.created_at.desc(), ResponseRow.id.desc())
    rows = list(await session.execute(statement.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return (rows[::-1] if newer else rows), more


def _filtered(statement: sa.Select[Any], filters: ResponseFilters, dialect: str) -> sa.Select[Any]:
    if filters.status is not None:
        statement = statement.where(ResponseRow.status == filters.status)
    if filters.model is not None:
        statement = statement.where(ResponseRow.model == filters.model)
    if filters.conversation_id is not None:
        statement = statement.where(ResponseRow.conversation_id == filters.conversation_id)
    if filters.created_from is not None:
        statement = statement.where(ResponseRow.created_at >= filters.created_from)
    if filters.created_to is not None:
        statement = statement.where(ResponseRow.created_at < filters.created_to)
    if filters.metadata is not None:
        key, value = filters.metadata
        if dialect == "postgresql":
            as_jsonb = sa.cast(ResponseRow.metadata_, postgresql.JSONB)
            statement = statement.where(as_jsonb.contains({key: value}))
        else:
            statement = statement.where(ResponseRow.metadata_[key].as_string() == value)
    return statement


async def _cursor(
    session: AsyncSession, project_id: str, response_id: str
) -> tuple[datetime, str] | None:
    statement = owned(sa.select(ResponseRow.created_at), ResponseRow, project_id)
    created_at = await session.scalar(statement.where(ResponseRow.id == response_id))
    return None if created_at is None else (created_at, response_id)


async def get(session: AsyncSession, project_id: str, response_id: str) -> ResponseRow | None:
    statement = owned(sa.select(ResponseRow), ResponseRow, project_id)
    row: ResponseRow | None = await session.scalar(statement.where(ResponseRow.id == response_id))
    return row


async def exists(session: AsyncSession, project_id: str, response_id: str) -> bool:
    statement = owned(sa.select(ResponseRow.id), ResponseRow, project_id)
    return await session.scalar(statement.where(ResponseRow.id == response_id)) is not None


async def ancestors(session: AsyncSession, project_id: str, response_id: str) -> list[sa.Row[Any]]:
    """The previous responses, nearest first, up to `CHAIN_DEPTH` of them: one recursive walk
    by primary key. Deleted ones are kept (marked by `deleted_at`): the chain still runs
    through them, as the context does."""
    columns = (*LIST_COLUMNS, ResponseRow.deleted_at)
    start: sa.Select[Any] = sa.select(  # type: ignore[assignment]
        ResponseRow.previous_response_id.label("next_id"), sa.literal(0).label("depth")
    )
    start = owned(start, ResponseRow, project_id, live=False).where(ResponseRow.id == response_id)
    walk = start.cte("walk", recursive=True)
    parent = sa.orm.aliased(ResponseRow)
    step = owned(
        sa.select(parent.previous_response_id, walk.c.depth + 1), parent, project_id, live=False
    ).where(parent.id == walk.c.next_id, walk.c.depth < CHAIN_DEPTH)
    walk = walk.union_all(step)
    statement = owned(sa.select(*columns, walk.c.depth), ResponseRow, project_id, live=False)
    statement = statement.join(walk, ResponseRow.id == walk.c.next_id).order_by(walk.c.depth)
    return list(await session.execute(statement))


async def continuations(
    session: AsyncSession, project_id: str, response_ids: Sequence[str], limit: int = 200
) -> list[sa.Row[Any]]:
    """Responses continuing any of `response_ids` (children: the next turn and its branches),
    oldest first, through the previous_response_id index."""
    if not response_ids:
        return []
    statement = owned(sa.select(*LIST_COLUMNS), ResponseRow, project_id)
    statement = statement.where(ResponseRow.previous_response_id.in_(list(response_ids)))
    order = (ResponseRow.created_at.asc(), ResponseRow.id.asc())
    return list(await session.execute(statement.order_by(*order).limit(limit)))


async def items(
    session: AsyncSession, response_id: str, side: str, after_position: int, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    """`limit + 1` items of one side, in order, past a position (the response's ownership is
    checked by the caller first: items carry the same project)."""
    statement = (
        sa.select(Item.position, Item.body)
        .where(Item.response_id == response_id, Item.side == side, Item.position > after_position)
        .order_by(Item.position)
        .limit(limit + 1)
    )
    return [(position, body) for position, body in await session.execute(statement)]


async def models(session: AsyncSession, project_id: str) -> list[str]:
    """The project's model names, by a loose index scan: one probe of the (project_id, model,
    created_at) index per distinct model, not a read of every row."""
    first = owned(sa.select(sa.func.min(ResponseRow.model)), ResponseRow, project_id)
    seen = sa.select(first.scalar_subquery().label("model"), sa.literal(1).label("n"))
    walk = seen.cte("models", recursive=True)
    following = owned(sa.select(sa.func.min(ResponseRow.model)), ResponseRow, project_id).where(
        ResponseRow.model > walk.c.model
    )
    walk = walk.union_all(
        sa.select(following.scalar_subquery(), walk.c.n + 1).where(
            walk.c.model.is_not(None), walk.c.n < MAX_MODELS
        )
    )
    names = await session.scalars(sa.select(walk.c.model).where(walk.c.model.is_not(None)))
    return list(names)


async def background(session: AsyncSession, project_id: str, limit: int) -> list[sa.Row[Any]]:
    """The project's newest background responses, by the partial index on background rows."""
    statement = owned(sa.select(*LIST_COLUMNS), ResponseRow, project_id)
    statement = statement.where(ResponseRow.background)
    order = (ResponseRow.created_at.desc(), ResponseRow.id.desc())
    return list(await session.execute(statement.order_by(*order).limit(limit)))


async def of_conversation(
    session: AsyncSession, project_id: str, conversation_id: str, limit: int
) -> list[sa.Row[Any]]:
    statement = owned(sa.select(*LIST_COLUMNS), ResponseRow, project_id)
    statement = statement.where(ResponseRow.conversation_id == conversation_id)
    order = (ResponseRow.created_at.desc(), ResponseRow.id.desc())
    return list(await session.execute(statement.order_by(*order).limit(limit)))


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
