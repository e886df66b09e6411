"""A response's row and its items written together: on Postgres, in one statement.

A create writes the response with its input, and its ending writes the terminal state with
its output. As two statements in a transaction that is four round trips (BEGIN, two
statements, COMMIT), each costing the loop a turn and SQLAlchemy and asyncpg their
bookkeeping; as one statement (a data-modifying CTE, the items from `unnest` of arrays, so
that one prepared statement serves any number of them) it is one, and needs no transaction of
its own: `single_statements` runs it in autocommit, where it is still all or nothing.

A worker's claim reads likewise: the conditional UPDATE that takes a queued response returns
its row and, aggregated in the same statement, its input items.

SQLite has neither data-modifying CTEs nor `unnest`: there, and for more items than one
statement takes, the two statements run as before, which needs the caller's unit of work
(`fits_one_statement` says which).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ResponseRow
from app.db.session import is_postgres, write_value
from app.responses import repository
from app.responses.repository import ITEMS, RESPONSES, ChainEnd
from app.wire.codec import encoder


class NewItems(NamedTuple):
    """Items of one response and side, as `repository.insert_items` takes them."""

    project_id: str
    response_id: str
    side: str
    bodies: Sequence[dict[str, Any]]
    created_at: datetime
    token_counts: Sequence[int] | None = None
    token_encoding: str | None = None


def fits_one_statement(bodies: Sequence[object]) -> bool:
    """Whether the write of these items is one statement on Postgres (so needs no unit of
    work there); bigger ones go in slices that keep the loop free between them."""
    return len(bodies) <= repository.INSERT_SLICE


async def insert_response_with_items(
    session: AsyncSession, values: dict[str, Any], items: NewItems
) -> None:
    """`values` as `repository.insert_response` takes them; `items` are the response's input."""
    if is_postgres(session) and fits_one_statement(items.bodies):
        columns = tuple(sorted(values))
        statement = _INSERT_WITH_ITEMS.get(columns)
        if statement is None:
            assigned = {
                column: sa.bindparam(f"response_{column}", type_=RESPONSES.c[column].type)
                for column in columns
            }
            response = sa.insert(RESPONSES).values(assigned).cte("new_response")
            statement = _INSERT_WITH_ITEMS[columns] = (
                sa.insert(ITEMS).from_select(_ITEM_COLUMNS, _item_rows()).add_cte(response)
            )
        parameters = {f"response_{column}": value for column, value in values.items()}
        await write_value(session, statement, parameters | _item_arrays(items))
        return
    await repository.insert_response(session, values)
    await _insert_items(session, items)


async def finish_with_items(
    session: AsyncSession,
    project_id: str,
    response_id: str,
    values: dict[str, Any],
    items: NewItems,
    epoch: int | None = None,
    chain: ChainEnd | None = None,
) -> bool:
    """`repository.finish_response`, and the output items only when it applied."""
    if not (is_postgres(session) and fits_one_statement(items.bodies)):
        if not await repository.finish_response(
            session, project_id, response_id, values, epoch, chain
        ):
            return False
        await _insert_items(session, items)
        return True
    columns = tuple(sorted(values))
    key = (*columns, epoch is not None, chain is not None)
    statement = _FINISH_WITH_ITEMS.get(key)
    if statement is None:
        update = repository.finish_statement(columns, epoch is not None, chain is not None)
        finished = update.returning(RESPONSES.c.id).cte("finished")
        written = sa.insert(ITEMS).from_select(_ITEM_COLUMNS, _item_rows(finished)).cte("written")
        statement = _FINISH_WITH_ITEMS[key] = (
            sa.select(sa.func.count()).select_from(finished).add_cte(written)
        )
    parameters = repository.finish_parameters(project_id, response_id, values, epoch, chain)
    return bool(await write_value(session, statement, parameters | _item_arrays(items)))


async def claim_with_input(
    session: AsyncSession, response_id: str, now: datetime
) -> tuple[ResponseRow, list[dict[str, Any]]] | None:
    """`repository.claim_queued`, with the response's input items in position order."""
    if not is_postgres(session):
        row = await repository.claim_queued(session, response_id, now)
        if row is None:
            return None
        return row, await repository.get_bodies(session, response_id, repository.INPUT)
    found = (
        await session.execute(_CLAIM_WITH_INPUT, {"claim_id": response_id, "claim_now": now})
    ).first()
    if found is None:
        return None
    return repository.claimed_row(found), list(found.input_bodies or ())


async def _insert_items(session: AsyncSession, items: NewItems) -> None:
    await repository.insert_items(
        session,
        project_id=items.project_id,
        response_id=items.response_id,
        side=items.side,
        bodies=items.bodies,
        created_at=items.created_at,
        token_counts=items.token_counts,
        token_encoding=items.token_encoding,
    )


def _item_arrays(items: NewItems) -> dict[str, Any]:
    """The items as one array per column; bodies as JSON text, which `json` keeps verbatim
    (key order included, as the row-per-item INSERT stored them)."""
    bodies = items.bodies
    counts: Sequence[int | None] = items.token_counts or [None] * len(bodies)
    return {
        "item_ids": [body["id"] for body in bodies],
        "item_types": [body["type"] for body in bodies],
        "item_bodies": [encoder.encode(body).decode() for body in bodies],
        "item_counts": list(counts),
        "item_project_id": items.project_id,
        "item_response_id": items.response_id,
        "item_side": items.side,
        "item_encoding": items.token_encoding,
        "item_created_at": items.created_at,
    }


def _item_rows(only_after: sa.CTE | None = None) -> sa.Select[Any]:
    """The items' rows from the arrays of `_item_arrays`, in order; with `only_after`, none
    unless that CTE returned a row (the UPDATE applied)."""
    arrays = (
        sa.func.unnest(
            sa.bindparam("item_ids", type_=postgresql.ARRAY(sa.String)),
            sa.bindparam("item_types", type_=postgresql.ARRAY(sa.String)),
            sa.bindparam("item_bodies", type_=postgresql.ARRAY(sa.Text)),
            sa.bindparam("item_counts", type_=postgresql.ARRAY(sa.Integer)),
        )
        .table_valued("id", "type", "body", "token_count", with_ordinality="ordinal")
        .render_derived("item_rows")
    )
    rows = sa.select(
        arrays.c.id,
        sa.bindparam("item_project_id", type_=sa.String),
        sa.bindparam("item_response_id", type_=sa.String),
        sa.bindparam("item_side", type_=sa.String),
        arrays.c.ordinal - sa.literal_column("1"),
        arrays.c.type,
        sa.cast(arrays.c.body, sa.JSON),
        arrays.c.token_count,
        sa.case(
            (arrays.c.token_count.is_(None), sa.null()),
            else_=sa.bindparam("item_encoding", type_=sa.String),
        ),
        sa.bindparam("item_created_at", type_=ITEMS.c.created_at.type),
    )
    if only_after is not None:
        rows = rows.where(sa.exists(sa.select(only_after.c.id)))
    return rows


_ITEM_COLUMNS = (
    "id",
    "project_id",
    "response_id",
    "side",
    "position",
    "type",
    "body",
    "token_count",
    "token_encoding",
    "created_at",
)
# One statement per set of columns written, built on first use: creates write the same set.
_INSERT_WITH_ITEMS: dict[tuple[str, ...], sa.Insert] = {}
# Likewise per set of columns an ending writes, as `repository.finish_statement`.
_FINISH_WITH_ITEMS: dict[tuple[object, ...], sa.Select[Any]] = {}
_CLAIMED = repository.CLAIM.cte("claimed")
# `json_agg` of `json` values joins their texts: the bodies come back as they were stored.
_CLAIM_WITH_INPUT = sa.select(
    _CLAIMED,
    sa.select(
        sa.func.json_agg(
            postgresql.aggregate_order_by(ITEMS.c.body, ITEMS.c.position),
            type_=ITEMS.c.body.type,
        )
    )
    .where(ITEMS.c.response_id == _CLAIMED.c.id, ITEMS.c.side == repository.INPUT)
    .scalar_subquery()
    .label("input_bodies"),
)
