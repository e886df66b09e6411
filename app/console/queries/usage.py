"""Usage over time: requests and tokens per time bucket, model and key, summed in SQL.

One GROUP BY over the project's responses in the window, read through (project_id,
created_at); the rows that come back are buckets by models by keys, not responses. Deleted
responses count: their tokens were spent. Buckets are whole multiples of their width in UTC
seconds, the same arithmetic on Postgres and SQLite.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ResponseRow
from app.db.scoping import owned


class UsageRow(msgspec.Struct, frozen=True):
    bucket: int  # the bucket's start, seconds since the epoch (UTC)
    model: str
    key_id: str | None
    requests: int
    input_tokens: int
    output_tokens: int


async def buckets(
    session: AsyncSession, project_id: str, since: datetime, width_seconds: int
) -> list[UsageRow]:
    bucket = _bucket(session.get_bind().dialect.name, width_seconds).label("bucket")
    input_tokens = sa.func.coalesce(sa.func.sum(ResponseRow.usage["input_tokens"].as_integer()), 0)
    output_tokens = sa.func.coalesce(
        sa.func.sum(ResponseRow.usage["output_tokens"].as_integer()), 0
    )
    statement = owned(
        sa.select(
            bucket,
            ResponseRow.model,
            ResponseRow.key_id,
            sa.func.count(),
            input_tokens,
            output_tokens,
        ),
        ResponseRow,
        project_id,
        live=False,
    )
    statement = (
        statement.where(ResponseRow.created_at >= since)
        .group_by(bucket, ResponseRow.model, ResponseRow.key_id)
        .order_by(bucket)
    )
    rows = await session.execute(statement)
    return [
        UsageRow(int(at), model, key_id, int(count), int(inputs), int(outputs))
        for at, model, key_id, count, inputs, outputs in rows
    ]


def _bucket(dialect: str, width_seconds: int) -> sa.ColumnElement[Any]:
    # Inlined, not bound: GROUP BY must repeat the very expression the SELECT has, and two
    # bound parameters are two expressions to Postgres. The width is ours, never a client's.
    width = sa.literal_column(str(int(width_seconds)), sa.Integer)
    if dialect == "postgresql":
        # Integer seconds: `extract` gives numeric, whose division and hashing cost about as
        # much as the rest of a million-row GROUP BY together.
        epoch = sa.cast(
            sa.func.floor(sa.func.extract("epoch", ResponseRow.created_at)), sa.BigInteger
        )
        return (epoch // width) * width
    seconds = sa.cast(sa.func.strftime("%s", ResponseRow.created_at), sa.Integer)
    return (seconds // width) * width
