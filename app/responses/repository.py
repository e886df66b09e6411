"""All SQL of responses and their items. Never commits, never sees HTTP.

Writes use Core `insert`/`update` statements rather than the ORM's unit of work: a create is
one INSERT for the response and one multi-row INSERT for its items, which is what keeps the
gateway's added latency in single milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.models import Item, ResponseRow
from app.db.scoping import owned
from app.pagination import PageRequest

INPUT = "input"
OUTPUT = "output"


async def insert_response(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(ResponseRow), [values])


async def insert_items(
    session: AsyncSession,
    *,
    project_id: str,
    response_id: str | None,
    side: str,
    bodies: Sequence[dict[str, Any]],
    created_at: datetime,
    first_position: int = 0,
) -> None:
    if not bodies:
        return
    await session.execute(
        sa.insert(Item),
        [
            {
                "id": body["id"],
                "project_id": project_id,
                "response_id": response_id,
                "side": side,
                "position": first_position + offset,
                "type": body["type"],
                "body": body,
                "created_at": created_at,
            }
            for offset, body in enumerate(bodies)
        ],
    )


async def finish_response(
    session: AsyncSession, project_id: str, response_id: str, values: dict[str, Any]
) -> bool:
    """Write a terminal state once: a response already terminal (say, cancelled) is left alone."""
    result = await session.execute(
        owned(sa.update(ResponseRow), ResponseRow, project_id, live=False)
        .where(ResponseRow.id == response_id)
        .where(ResponseRow.status.in_(("queued", "in_progress")))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_response(
    session: AsyncSession, project_id: str, response_id: str
) -> ResponseRow | None:
    statement = owned(sa.select(ResponseRow), ResponseRow, project_id)
    row: ResponseRow | None = await session.scalar(statement.where(ResponseRow.id == response_id))
    return row


async def get_bodies(
    session: AsyncSession, response_id: str, side: str = OUTPUT
) -> list[dict[str, Any]]:
    rows = await session.scalars(
        sa.select(Item.body)
        .where(Item.response_id == response_id, Item.side == side)
        .order_by(Item.position)
    )
    return list(rows)


async def chain_item_bodies(
    session: AsyncSession, project_id: str, newest_id: str
) -> list[dict[str, Any]]:
    """Every item of `newest_id` and its ancestors, oldest turn first: one recursive query.

    The recursive part walks `previous_response_id` links (ancestors may be deleted: a
    deletion hides a response, it does not rewrite the history of its descendants); the join
    reads each turn's input items, then its output items, in position order.
    """
    chain = (
        sa.select(ResponseRow.id, ResponseRow.previous_response_id, sa.literal(0).label("depth"))
        .where(ResponseRow.id == newest_id, ResponseRow.project_id == project_id)
        .cte("chain", recursive=True)
    )
    parent = aliased(ResponseRow)
    chain = chain.union_all(
        sa.select(parent.id, parent.previous_response_id, chain.c.depth + 1).where(
            parent.id == chain.c.previous_response_id, parent.project_id == project_id
        )
    )
    rows = await session.scalars(
        sa.select(Item.body)
        .join(chain, Item.response_id == chain.c.id)
        .order_by(chain.c.depth.desc(), Item.side, Item.position)
    )
    return list(rows)


async def soft_delete(
    session: AsyncSession, project_id: str, response_id: str, at: datetime
) -> bool:
    result = await session.execute(
        owned(sa.update(ResponseRow), ResponseRow, project_id)
        .where(ResponseRow.id == response_id)
        .values(deleted_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def page_input_items(
    session: AsyncSession, response_id: str, page: PageRequest
) -> list[dict[str, Any]] | None:
    """`limit + 1` input item bodies past the cursor; None when a cursor id is not an item here."""
    statement = sa.select(Item.body).where(Item.response_id == response_id, Item.side == INPUT)
    descending = page.order == "desc"
    for cursor, later in ((page.after, True), (page.before, False)):
        if cursor is None:
            continue
        position = await session.scalar(
            sa.select(Item.position).where(
                Item.response_id == response_id, Item.side == INPUT, Item.id == cursor
            )
        )
        if position is None:
            return None
        # "after" means further along in the chosen order; "before" means earlier in it.
        forward = later != descending
        statement = statement.where(
            Item.position > position if forward else Item.position < position
        )
    order = Item.position.desc() if descending else Item.position.asc()
    rows = await session.scalars(statement.order_by(order).limit(page.limit + 1))
    return list(rows)
