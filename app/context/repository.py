"""All SQL of context reads: a chain's items and a conversation's, cut to what can fit.

Each read is one statement at any length of history. With a `budget` (the tokens the history
may take: the window less instructions, tools, the new input and the answer's reserve), the
cut is found in SQL from the stored per-item token counts, newest first, so only the items
that can be sent are transferred and decoded. Both walk about what fits, not the history:
a chain's walk stops at the first ancestor whose newer items fill the budget, by the running
count each response keeps (`chain_tokens`, migration 0011), and its cut is then a window
function over the walked turns' items; a conversation's comes from running counts kept on its
rows (migration 0010), so a turn on a 10,000-item conversation reads what fits. The newest
item always comes back (with the tokens left out), so a caller can tell an empty history from
one cut to nothing. Everything is read when the cut cannot be trusted: an item without a
cached count for this encoding, or a compaction item (which replaces earlier items, so their
counts do not add up to what is sent)."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Conversation, ConversationItem, Item, ResponseRow
from app.db.scoping import owner_of

RESPONSES: sa.Table = ResponseRow.__table__  # type: ignore[assignment]
ITEMS: sa.Table = Item.__table__  # type: ignore[assignment]
LINKS: sa.Table = ConversationItem.__table__  # type: ignore[assignment]
CONVERSATIONS: sa.Table = Conversation.__table__  # type: ignore[assignment]


class Read(msgspec.Struct):
    """Bodies and cached counts, oldest first, and what the cut left out."""

    bodies: list[dict[str, Any]]
    counts: list[int | None]
    omitted_tokens: int = 0  # tokens of the older items not read (0: nothing was cut)


def cached_count(items: sa.Table) -> sa.ColumnElement[Any]:
    """An item's cached token count, only where it was made with the encoding asked for."""
    return sa.case(
        (items.c.token_encoding == sa.bindparam("token_encoding"), items.c.token_count),
        else_=sa.null(),
    )


def _cut(rows: Any, newest_first: tuple[Any, ...]) -> list[Any]:
    """The window columns over `rows` (newest first) that `_kept` decides on."""
    count = rows.c.token_count
    newer = sa.func.sum(count).over(order_by=newest_first, rows=(None, 0))
    columns = [
        newer.label("newer_tokens"),
        sa.func.row_number().over(order_by=newest_first).label("rank"),
        sa.func.sum(count).over().label("total_tokens"),
        sa.func.count().over().label("item_count"),
        sa.func.count(count).over().label("counted"),
        sa.func.max(sa.case((rows.c.type == "compaction", 1), else_=0)).over().label("compacted"),
    ]
    return columns


def _kept(cut: Any) -> sa.ColumnElement[bool]:
    """A row is read when it and everything newer fit the budget, when it is the newest, or
    when the cut cannot be trusted (counts missing, a compaction in the history)."""
    budget = sa.bindparam("budget", type_=sa.Integer)
    return sa.or_(
        budget.is_(None),
        cut.c.newer_tokens <= budget,
        cut.c.rank == 1,
        cut.c.counted < cut.c.item_count,
        cut.c.compacted == 1,
    )


def _chain_statement(lateral: bool) -> sa.Executable:
    """The recursive walk by primary key (every row owner-scoped), then each turn's items.

    On Postgres each step is a LATERAL subquery with `OFFSET 0`, which the planner may not
    flatten into a join: the parent is then a primary-key lookup and each turn's items an
    index range read, whatever it guesses of the tables. Without statistics it would
    otherwise hash all of `items`, and all of the project's responses, for one chain
    (tests/test_query_plans.py)."""
    project: sa.BindParameter[str] = sa.bindparam("project_id")
    chain = (
        sa.select(RESPONSES.c.id, RESPONSES.c.previous_response_id, sa.literal(0).label("depth"))
        .where(
            RESPONSES.c.id == sa.bindparam("newest_id"),
            owner_of(RESPONSES.c.project_id, project),
        )
        .cte("chain", recursive=True)
    )
    parent = RESPONSES.alias("parent")
    # Stop at the first ancestor whose newer items alone take the budget (their tokens are the
    # head's running count less its own): none of its items, nor any older, can be sent.
    floor = sa.bindparam("chain_floor", type_=sa.BigInteger)
    within = sa.or_(floor.is_(None), parent.c.chain_tokens >= floor)
    step = sa.select(parent.c.id, parent.c.previous_response_id)
    if lateral:
        fenced = (
            step.where(parent.c.id == chain.c.previous_response_id)
            .where(owner_of(parent.c.project_id, project), within)
            .offset(0)
            .lateral("step")
        )
        chain = chain.union_all(
            sa.select(fenced.c.id, fenced.c.previous_response_id, chain.c.depth + 1)
            .select_from(chain)
            .join(fenced, sa.true())
        )
    else:
        chain = chain.union_all(
            sa.select(parent.c.id, parent.c.previous_response_id, chain.c.depth + 1).where(
                parent.c.id == chain.c.previous_response_id,
                owner_of(parent.c.project_id, project),
                within,
            )
        )
    fields = (
        ITEMS.c.body,
        cached_count(ITEMS).label("token_count"),
        ITEMS.c.side,
        ITEMS.c.position,
        ITEMS.c.type,
    )
    if lateral:
        turn = sa.select(*fields).where(ITEMS.c.response_id == chain.c.id).offset(0).lateral("turn")
        joined = sa.select(chain.c.depth, *turn.c).select_from(chain).join(turn, sa.true())
    else:
        joined = sa.select(chain.c.depth, *fields).join(chain, ITEMS.c.response_id == chain.c.id)
    rows = joined.subquery("rows")
    newest_first = (rows.c.depth, rows.c.side.desc(), rows.c.position.desc())
    columns = _cut(rows, newest_first)
    cut = sa.select(*rows.c, *columns).subquery("cut")
    return (
        sa.select(cut.c.body, cut.c.token_count, cut.c.total_tokens, cut.c.newer_tokens)
        .where(_kept(cut))
        .order_by(cut.c.depth.desc(), cut.c.side, cut.c.position)
    )


_CHAIN = {"postgresql": _chain_statement(lateral=True), "sqlite": _chain_statement(lateral=False)}


def _conversation_statement(aggregated: bool) -> sa.Executable:
    """The cut comes from the running counts (migration 0010): where the conversation's counts
    can be trusted for this encoding, the last item that does not fit is found by walking the
    (conversation_id, seq) key back from the newest item while `tokens_before` still leaves the
    rest within the budget — a walk over what fits, whatever the conversation's length, and no
    statistics needed to plan it. Only from there is `items` joined for the bodies. On
    Postgres bodies and counts come back as two JSON arrays (json_agg in seq order), each
    decoded in one call: per-row result processing costs ≈ 16 µs an item."""
    mine = LINKS.c.conversation_id == sa.bindparam("conversation_id")
    latest = LINKS.alias("latest")
    newest = (  # ORDER BY … LIMIT 1, not max(): stale statistics made max() read every key
        sa.select(latest.c.seq)
        .where(latest.c.conversation_id == sa.bindparam("conversation_id"))
        .order_by(latest.c.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    budget = sa.bindparam("budget", type_=sa.Integer)
    left_out = (
        sa.select(LINKS.c.seq)
        .where(
            mine,
            LINKS.c.seq < newest,  # the newest item always comes back
            LINKS.c.tokens_before < CONVERSATIONS.c.tokens_total - budget,
        )
        .order_by(LINKS.c.seq.desc())
        .limit(1)
        .correlate(CONVERSATIONS)
        .scalar_subquery()
    )
    trusted = sa.and_(
        budget.is_not(None),
        CONVERSATIONS.c.uncountable_items == 0,
        CONVERSATIONS.c.token_encoding == sa.bindparam("token_encoding"),
    )
    # One value, computed once whatever the join order (an uncorrelated scalar subquery is an
    # InitPlan): joined as a row instead, stale statistics made Postgres walk the key once per
    # item of the conversation (10,000 walks, 600 ms).
    left_out_seq = sa.func.coalesce(
        sa.select(sa.case((trusted, left_out), else_=sa.null()))
        .where(CONVERSATIONS.c.id == sa.bindparam("conversation_id"))
        .correlate(None)
        .scalar_subquery(),
        -1,
    )
    if not aggregated:
        return (
            sa.select(LINKS.c.seq, ITEMS.c.body, cached_count(ITEMS).label("token_count"))
            .add_columns(LINKS.c.tokens_before)
            .join(ITEMS, ITEMS.c.id == LINKS.c.item_id)
            .where(mine, LINKS.c.seq > left_out_seq)
            .order_by(LINKS.c.seq)
        )
    # Each body by primary key through a fenced LATERAL (as in the chain read): with
    # statistics, Postgres guesses a third of the conversation is read and hashes all of
    # `items` for what is usually a window's worth of rows.
    item = (
        sa.select(ITEMS.c.body, cached_count(ITEMS).label("token_count"))
        .where(ITEMS.c.id == LINKS.c.item_id)
        .offset(0)
        .lateral("item")
    )
    page = (
        sa.select(LINKS.c.seq, item.c.body, item.c.token_count, LINKS.c.tokens_before)
        .select_from(LINKS)
        .join(item, sa.true())
        .where(mine, LINKS.c.seq > left_out_seq)
        .subquery("page")
    )
    return sa.select(
        sa.type_coerce(sa.func.json_agg(aggregate_order_by(page.c.body, page.c.seq)), sa.JSON()),
        sa.type_coerce(
            sa.func.json_agg(aggregate_order_by(page.c.token_count, page.c.seq)), sa.JSON()
        ),
        sa.func.min(page.c.tokens_before),
    )


_CONVERSATION = {
    "postgresql": _conversation_statement(aggregated=True),
    "sqlite": _conversation_statement(aggregated=False),
}


async def chain_items(
    session: AsyncSession,
    project_id: str,
    newest_id: str,
    token_encoding: str,
    budget: int | None = None,
    chain_tokens: int | None = None,
) -> Read:
    """The items of `newest_id` and its ancestors, oldest turn first (each turn's input, then
    its output, in position order), cut to `budget` (module docstring). Ancestors may be
    deleted: a deletion hides a response, it does not rewrite its descendants' history.

    `chain_tokens` is the newest response's running count when it is in `token_encoding`
    (the caller has its row): given with a budget, the walk stops at the window."""
    dialect = session.get_bind().dialect.name
    floor = None  # no stop: no count, no budget, or the whole chain fits
    if chain_tokens is not None and budget is not None and chain_tokens > budget:
        floor = chain_tokens - budget
    parameters = {
        "newest_id": newest_id,
        "project_id": project_id,
        "token_encoding": token_encoding,
        "budget": budget,
        "chain_floor": floor,
    }
    rows = (await session.execute(_CHAIN.get(dialect, _CHAIN["sqlite"]), parameters)).all()
    if not rows:
        return Read([], [])
    kept_tokens = rows[0][3] or 0  # the oldest kept row's "newer" sum: all that was read
    total = chain_tokens if floor is not None else rows[0][2]  # a stopped walk saw part of it
    return Read([row[0] for row in rows], [row[1] for row in rows], _omitted(total, kept_tokens))


async def conversation_items(
    session: AsyncSession, conversation_id: str, token_encoding: str, budget: int | None = None
) -> Read:
    """The conversation's items in order, cut to `budget` (module docstring)."""
    parameters = {
        "conversation_id": conversation_id,
        "token_encoding": token_encoding,
        "budget": budget,
    }
    if session.get_bind().dialect.name == "postgresql":
        row: Any = (await session.execute(_CONVERSATION["postgresql"], parameters)).one()
        bodies, counts, omitted = row
        return Read(list(bodies or []), list(counts or []), omitted or 0)
    rows = (await session.execute(_CONVERSATION["sqlite"], parameters)).all()
    if not rows:
        return Read([], [])
    return Read([row[1] for row in rows], [row[2] for row in rows], rows[0][3] or 0)


def _omitted(total: int | None, kept: int) -> int:
    """Tokens left out: the history's total less what was read (0 when nothing was cut or
    when counts are missing, in which case everything was read)."""
    return max(0, (total or 0) - kept) if total is not None else 0
