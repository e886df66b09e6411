"""The console's filters each have an index their plan can use (migration 0008).

On a test database the planner would rightly scan a tiny table, so sequential scans are
priced out (`enable_seqscan = off`), and the console's other indexes are dropped inside the
EXPLAIN's transaction (rolled back): on empty tables two indexes can cost the same, and which
one wins a tie is not what is tested. What is left is whether the index matches the statement
at all — the partial index's predicate, the GIN index's jsonb expression, the column order.
`bench/console.py` measures the same statements on a million responses.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.console.filters import ResponseFilters
from app.console.queries import conversations, responses
from app.db.models import ResponseRow

P = "proj_plans"
Query = Callable[[AsyncSession], Awaitable[Any]]
CASES: list[tuple[str, Query]] = [
    (
        "ix_responses_project_created",
        lambda s: responses.page(s, P, ResponseFilters(), after=None, before=None, limit=50),
    ),
    (
        "ix_responses_project_status_created",
        lambda s: responses.page(
            s, P, ResponseFilters(status="failed"), after=None, before=None, limit=50
        ),
    ),
    (
        "ix_responses_project_model_created",
        lambda s: responses.page(
            s, P, ResponseFilters(model="m"), after=None, before=None, limit=50
        ),
    ),
    ("ix_responses_project_background", lambda s: responses.background(s, P, 50)),
    ("ix_responses_project_model_created", lambda s: responses.models(s, P)),
    ("ix_conversations_project_created", lambda s: conversations.page(s, P, after=None, limit=50)),
]


def indexes_in(plan: dict[str, Any]) -> set[str]:
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= indexes_in(child)
    return found


CONSOLE_INDEXES = {index for index, _ in CASES} | {
    "ix_responses_metadata",
    "ix_responses_conversation_id",
}


async def plan_of(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    query: Query,
    index: str | None = None,
) -> dict[str, Any]:
    """The plan of the last statement `query` runs, sequential scans priced out and, given
    `index`, the console's other indexes out of the way."""
    captured: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with sessions() as session:
            await query(session)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    statement, parameters = captured[-1]
    async with engine.connect() as connection:
        await connection.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
        await connection.exec_driver_sql("SET enable_seqscan = off")
        for other in sorted(CONSOLE_INDEXES - {index}) if index else ():
            await connection.exec_driver_sql(f"DROP INDEX IF EXISTS {other}")
        explained = await connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) {statement}", parameters
        )
        document = explained.scalar()
        await connection.rollback()
    parsed = json.loads(document) if isinstance(document, str) else document
    plan: dict[str, Any] = parsed[0]["Plan"]
    return plan


@pytest.mark.parametrize(
    ("index", "query"), CASES, ids=[f"{i}-{n}" for n, (i, _) in enumerate(CASES)]
)
async def test_each_console_read_can_use_its_index(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], index: str, query: Query
) -> None:
    plan = await plan_of(engine, sessions, query, index)
    assert index in indexes_in(plan), plan


@pytest.mark.parametrize(
    ("index", "filters"),
    [
        ("ix_responses_metadata", ResponseFilters(metadata=("k", "v"))),
        ("ix_responses_conversation_id", ResponseFilters(conversation_id="conv_x")),
    ],
)
async def test_selective_filters_match_their_index(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    index: str,
    filters: ResponseFilters,
) -> None:
    """The console's predicate alone (beside project_id on an empty table a btree walk always
    looks cheaper): for metadata, CAST(metadata AS JSONB) @> … is the GIN index's expression."""
    statement = responses._filtered(sa.select(ResponseRow.id), filters, "postgresql")
    plan = await plan_of(engine, sessions, lambda session: session.execute(statement), index)
    assert index in indexes_in(plan), plan
