"""All SQL of responses and their items. Never commits, never sees HTTP.

Writes use Core `insert`/`update` statements rather than the ORM's unit of work: a create is
one INSERT for the response and one multi-row INSERT for its items, which is what keeps the
gateway's added latency in single milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.repository import COMPACTION
from app.db.models import Conversation, ConversationItem, Item, ResponseRow
from app.db.scoping import owned, owned_row
from app.pagination import PageRequest

INPUT = "input"
OUTPUT = "output"

# The hot statements run on the tables, not the mapped classes: an ORM-enabled INSERT or
# UPDATE costs about half a millisecond more per statement in SQLAlchemy's bookkeeping.
RESPONSES: sa.Table = ResponseRow.__table__  # type: ignore[assignment]
ITEMS: sa.Table = Item.__table__  # type: ignore[assignment]


async def insert_response(session: AsyncSession, values: dict[str, Any]) -> None:
    """`values` is keyed by column name (`metadata`, not the attribute `metadata_`)."""
    await session.execute(_INSERT_RESPONSE, values)


# Items per INSERT statement of `insert_items`.
INSERT_SLICE = 2000


async def insert_items(
    session: AsyncSession,
    *,
    project_id: str,
    response_id: str | None,
    side: str,
    bodies: Sequence[dict[str, Any]],
    created_at: datetime,
    first_position: int = 0,
    token_counts: Sequence[int] | None = None,
    token_encoding: str | None = None,
) -> None:
    """`token_counts` (one per body, made with `token_encoding`) is the cache the context
    window reads, so that a long history is not tokenized again on every turn."""
    if not bodies:
        return
    counts: Sequence[int | None] = token_counts or [None] * len(bodies)
    rows = [
        {
            "id": body["id"],
            "project_id": project_id,
            "response_id": response_id,
            "side": side,
            "position": first_position + offset,
            "type": body["type"],
            "body": body,
            "token_count": count,
            "token_encoding": token_encoding if count is not None else None,
            "created_at": created_at,
        }
        for offset, (body, count) in enumerate(zip(bodies, counts, strict=True))
    ]
    # In slices: the parameters of each are prepared on the event loop, and 100,000 items in
    # one statement would hold it for a second; between slices, other requests run.
    for start in range(0, len(rows), INSERT_SLICE):
        await session.execute(_INSERT_ITEMS, rows[start : start + INSERT_SLICE])


class ChainEnd(NamedTuple):
    """What a response's own output adds to its chain's running count (`chain_tokens`):
    `output_tokens` is None when the output cannot be counted into it (a compaction).
    `history_tokens` is the chain's total before this response as its history read counted
    it, for a parent that has no running count in this encoding."""

    output_tokens: int | None
    encoding: str
    history_tokens: int | None = None


async def finish_response(
    session: AsyncSession,
    project_id: str,
    response_id: str,
    values: dict[str, Any],
    epoch: int | None = None,
    chain: ChainEnd | None = None,
) -> bool:
    """Write a terminal state once: a response already terminal (say, cancelled) is left alone.
    With `epoch` (the attempt a run holds), only while no later attempt has taken it over.
    With `chain`, the same UPDATE writes the chain's running count (`_chain_tokens`)."""
    statement = finish_statement(tuple(sorted(values)), epoch is not None, chain is not None)
    parameters = finish_parameters(project_id, response_id, values, epoch, chain)
    result = await session.execute(statement, parameters)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_statement(columns: tuple[str, ...], fenced: bool, chained: bool) -> sa.Update:
    """The UPDATE of `finish_response` for this set of columns, built once per set."""
    key = (*columns, *(("@epoch",) if fenced else ()), *(("@chain",) if chained else ()))
    statement = _FINISH_STATEMENTS.get(key)
    if statement is None:
        conditions = [
            RESPONSES.c.id == sa.bindparam("where_id"),
            RESPONSES.c.project_id == sa.bindparam("where_project_id"),
            _STILL_ACTIVE,
        ]
        if fenced:
            conditions.append(RESPONSES.c.attempts == sa.bindparam("where_epoch"))
        assignments: dict[str, Any] = {
            column: sa.bindparam(f"set_{column}", type_=RESPONSES.c[column].type)
            for column in columns
        }
        if chained:
            assignments.update(
                chain_tokens=_chain_tokens(), chain_encoding=sa.bindparam("chain_encoding")
            )
        statement = _FINISH_STATEMENTS[key] = (
            sa.update(RESPONSES).where(*conditions).values(assignments)
        )
    return statement


def finish_parameters(
    project_id: str,
    response_id: str,
    values: dict[str, Any],
    epoch: int | None,
    chain: ChainEnd | None,
) -> dict[str, Any]:
    parameters: dict[str, Any] = {f"set_{column}": value for column, value in values.items()}
    parameters.update(where_id=response_id, where_project_id=project_id)
    if epoch is not None:
        parameters["where_epoch"] = epoch
    if chain is not None:
        parameters.update(
            chain_output_tokens=chain.output_tokens,
            chain_encoding=chain.encoding,
            chain_history_tokens=chain.history_tokens,
        )
    return parameters


async def claim_queued(
    session: AsyncSession, response_id: str, now: datetime
) -> ResponseRow | None:
    """Take a queued response for a run (in_progress, attempts + 1, heartbeat now); None when
    it is no longer queued. The row comes back with the UPDATE, as a plain (unattached)
    object: the ORM's bulk UPDATE and the flush of a loaded row cost about a millisecond of
    a worker's CPU per job."""
    claimed = (await session.execute(CLAIM, {"claim_id": response_id, "claim_now": now})).first()
    if claimed is None:
        return None
    return claimed_row(claimed)


def claimed_row(claimed: sa.Row[Any]) -> ResponseRow:
    """The response row from a row of `CLAIM`'s RETURNING (or a select of it)."""
    found = claimed._mapping
    return ResponseRow(**{attribute: found[name] for name, attribute in _ATTRIBUTES})


async def renew_heartbeat(session: AsyncSession, response_id: str, at: datetime) -> None:
    await session.execute(
        sa.update(RESPONSES).where(RESPONSES.c.id == response_id).values(heartbeat_at=at)
    )


async def get_response(
    session: AsyncSession, project_id: str, response_id: str
) -> ResponseRow | None:
    statement = owned_row(sa.select(ResponseRow), ResponseRow, project_id, response_id)
    row: ResponseRow | None = await session.scalar(statement)
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


def _chain_tokens() -> sa.ColumnElement[Any]:
    """The parent's running count (0 at a chain's start; else the total its history read
    counted) plus this response's input items, as stored with their cached counts, plus its
    output's: null — "walk everything" — when neither gives the parent's in this encoding,
    or an input item lacks a count in it or is a compaction
    (which replaces what came before, so counts no longer add up to what is sent). Subqueries
    by primary key and by the (response_id, side, position) key: no statement of its own."""
    encoding = sa.bindparam("chain_encoding", type_=sa.String)
    spoiled = sa.func.sum(
        sa.case(
            (
                sa.or_(
                    ITEMS.c.token_encoding.is_distinct_from(encoding), ITEMS.c.type == COMPACTION
                ),
                1,
            ),
            else_=0,
        )
    )
    own_input = (
        sa.select(
            sa.case(
                (
                    sa.func.coalesce(spoiled, 0) == 0,
                    sa.func.coalesce(sa.func.sum(ITEMS.c.token_count), 0),
                ),
                else_=sa.null(),
            )
        )
        .where(ITEMS.c.response_id == RESPONSES.c.id, ITEMS.c.side == INPUT)
        .scalar_subquery()
    )
    parent = RESPONSES.alias("chain_parent")
    before = sa.case(
        (RESPONSES.c.previous_response_id.is_(None), 0),
        else_=sa.func.coalesce(
            sa.select(parent.c.chain_tokens)
            .where(
                parent.c.id == RESPONSES.c.previous_response_id,
                parent.c.chain_encoding == encoding,
            )
            .scalar_subquery(),
            sa.bindparam("chain_history_tokens", type_=sa.BigInteger),
        ),
    )
    return before + own_input + sa.bindparam("chain_output_tokens", type_=sa.BigInteger)


ACTIVE_STATUSES = ("queued", "in_progress")
# Spelled as literals rather than an expanding IN: SQLAlchemy rewrites an expanding parameter's
# SQL on every execution (≈ 1.5 % of the API's CPU for the ending's UPDATE), and the literal
# form is the very predicate of the partial index on active responses.
_STILL_ACTIVE = RESPONSES.c.status.in_(
    [sa.literal_column(f"'{status}'") for status in ACTIVE_STATUSES]
)
CLAIM = (
    sa.update(RESPONSES)
    .where(RESPONSES.c.id == sa.bindparam("claim_id"), RESPONSES.c.status == "queued")
    .values(
        status="in_progress",
        attempts=RESPONSES.c.attempts + 1,
        heartbeat_at=sa.bindparam("claim_now"),
    )
    .returning(*RESPONSES.c)
)
# (column name, attribute name) of every mapped column: `metadata` is `metadata_`.
_ATTRIBUTES = tuple(
    (attribute.columns[0].name, attribute.key) for attribute in sa.inspect(ResponseRow).column_attrs
)
_INSERT_RESPONSE = sa.insert(RESPONSES)
_INSERT_ITEMS = sa.insert(ITEMS)
# One UPDATE per set of columns written, built on first use: a create writes the same set.
_FINISH_STATEMENTS: dict[tuple[str, ...], sa.Update] = {}


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


async def referenced_bodies(
    session: AsyncSession, project_id: str, item_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Stored items by id, as `item_reference` sees them: the caller's own, and only those
    still reachable — through a response not deleted, or a conversation not deleted."""
    live_response = sa.exists().where(
        ResponseRow.id == Item.response_id, ResponseRow.deleted_at.is_(None)
    )
    live_conversation = sa.exists().where(
        ConversationItem.item_id == Item.id,
        Conversation.id == ConversationItem.conversation_id,
        Conversation.deleted_at.is_(None),
    )
    rows = await session.execute(
        sa.select(Item.id, Item.body).where(
            Item.project_id == project_id,
            Item.id.in_(set(item_ids)),
            sa.or_(live_response, live_conversation),
        )
    )
    return {item_id: body for item_id, body in rows}
