"""Usage rows → chart series: every bucket of the window present (zeros where nothing ran),
one series per model or per key, requests and tokens side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Caller
from app.console.queries import keys as key_queries
from app.console.queries import usage as usage_queries
from app.console.queries.usage import UsageRow
from app.db.session import unit_of_work

# range name → (window, bucket width)
RANGES: Mapping[str, tuple[timedelta, int]] = {
    "24h": (timedelta(hours=24), 3600),
    "7d": (timedelta(days=7), 6 * 3600),
    "30d": (timedelta(days=30), 86400),
}
GROUPINGS = ("model", "key")
NO_KEY = "(key not recorded)"


class Series(msgspec.Struct):
    label: str
    requests: list[int]
    tokens: list[int]
    input_tokens: int
    output_tokens: int
    total_requests: int


class UsageReport(msgspec.Struct):
    range: str
    by: str
    buckets: list[int]  # each bucket's start, epoch seconds (UTC)
    series: list[Series]


async def report(
    sessions: async_sessionmaker[AsyncSession],
    caller: Caller,
    range_name: str,
    by: str,
    now: datetime | None = None,
) -> UsageReport:
    range_name = range_name if range_name in RANGES else "24h"
    by = by if by in GROUPINGS else "model"
    window, width = RANGES[range_name]
    now = now or datetime.now(UTC)
    end = int(now.timestamp()) // width * width
    start = end - int(window.total_seconds()) + width
    async with unit_of_work(sessions) as session:
        rows = await usage_queries.buckets(
            session, caller.project_id, datetime.fromtimestamp(start, UTC), width
        )
        names = await key_queries.names(session, caller.project_id) if by == "key" else {}
    buckets = list(range(start, end + 1, width))
    return UsageReport(range_name, by, buckets, _series(rows, buckets, by, names))


def _series(
    rows: Sequence[UsageRow], buckets: list[int], by: str, names: Mapping[str, str]
) -> list[Series]:
    index = {bucket: at for at, bucket in enumerate(buckets)}
    series: dict[str, Series] = {}
    for row in rows:
        if row.bucket not in index:
            continue
        label = row.model if by == "model" else _key_label(row.key_id, names)
        entry = series.get(label)
        if entry is None:
            entry = series[label] = Series(label, [0] * len(buckets), [0] * len(buckets), 0, 0, 0)
        at = index[row.bucket]
        entry.requests[at] += row.requests
        entry.tokens[at] += row.input_tokens + row.output_tokens
        entry.input_tokens += row.input_tokens
        entry.output_tokens += row.output_tokens
        entry.total_requests += row.requests
    return sorted(series.values(), key=lambda s: (-s.input_tokens - s.output_tokens, s.label))


def _key_label(key_id: str | None, names: Mapping[str, str]) -> str:
    if key_id is None:
        return NO_KEY
    name = names.get(key_id)
    return f"{name} ({key_id[-6:]})" if name else key_id
