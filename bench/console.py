"""The web console's reads on a project with a million responses: each page's queries, timed,
with the indexes their plans use (EXPLAIN ANALYZE on the very statements the console runs).

Seeds a throwaway Postgres database in SQL (`generate_series`, a few minutes' worth of
writes in seconds): one project with `--rows` responses over 30 days — most `completed`, a
few `failed`, a rare model, 1% background, 10% on conversations, 10% with metadata — and a
noise project a tenth its size. Then ANALYZE (as autovacuum would have) and, per query,
`--repeat` runs: the median, and the plan's index scans and any sequential scan.

    python bench/console.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from shared import DEFAULT_ADMIN_URL, bench_main, create_database, drop_database, machine
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.cli import migrate
from app.console import usage_report
from app.console.filters import ResponseFilters
from app.console.queries import conversations, responses
from app.db.session import create_engine, create_sessionmaker

PROJECT = "proj_bench"
NOISE = "proj_noise"
SEED = """
INSERT INTO api_keys (id, project_id, name, display_prefix, secret_sha256, created_at)
SELECT 'key_' || k || :project, :project, 'key ' || k, 'sk-gateway-…', md5(:project || k) || md5(k::text),
       now() FROM generate_series(1, 3) k;
INSERT INTO conversations (id, project_id, metadata, created_at, next_seq)
SELECT 'conv_' || lpad(to_hex(n), 12, '0') || :project, :project, CAST('{}' AS json),
       now() - (n * interval '30 days' / :conversations), 2
FROM generate_series(1, :conversations) n;
INSERT INTO responses (id, project_id, key_id, status, model, background, previous_response_id,
                       conversation_id, params, metadata, usage, created_at, completed_at,
                       attempts)
SELECT 'resp_' || lpad(to_hex(n), 12, '0') || :project, :project, 'key_' || (1 + n % 3) || :project,
       CASE WHEN n % 997 = 0 THEN 'failed' WHEN n % 50000 = 7 THEN 'queued'
            ELSE 'completed' END,
       CASE WHEN n % 1000 = 3 THEN 'rare-model' WHEN n % 20 = 1 THEN 'llama-3.1-8b'
            ELSE 'gpt-4o-mini' END,
       n % 100 = 5,
       CASE WHEN n % 4 = 0 THEN 'resp_' || lpad(to_hex(n - 1), 12, '0') || :project END,
       CASE WHEN n % 10 = 2 THEN 'conv_' || lpad(to_hex(1 + n % :conversations), 12, '0')
            || :project END,
       CAST('{}' AS json),
       CAST(CASE WHEN n % 10 = 6 THEN '{"customer": "c' || (n % 5000) || '"}' ELSE '{}' END
            AS json),
       CAST('{"input_tokens": ' || (20 + n % 300) || ', "output_tokens": ' || (5 + n % 90)
            || ', "total_tokens": ' || (25 + n % 300 + n % 90) || '}' AS json),
       now() - ((:rows - n) * interval '30 days' / :rows),
       now() - ((:rows - n) * interval '30 days' / :rows) + interval '800 milliseconds', 1
FROM generate_series(1, :rows) n;
"""


async def seed(url: str, rows: int) -> float:
    engine = create_engine(url)
    started = time.perf_counter()
    async with engine.begin() as connection:
        for project, count in ((PROJECT, rows), (NOISE, max(rows // 10, 1))):
            # Our own constants, inlined: asyncpg cannot type a parameter used as text and int.
            script = (
                SEED.replace(":project", f"'{project}'")
                .replace(":rows", str(count))
                .replace(":conversations", str(max(count // 100, 1)))
            )
            for statement in filter(str.strip, script.split(";")):
                await connection.execute(sa.text(statement))
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(sa.text("ANALYZE"))
    await engine.dispose()
    return time.perf_counter() - started


def plan_summary(plan: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(indexes scanned, tables read by a sequential scan) anywhere in the plan."""
    indexes: set[str] = set()
    scanned: set[str] = set()
    stack = [plan]
    while stack:
        node = stack.pop()
        if "Index Name" in node:
            indexes.add(node["Index Name"])
        if node.get("Node Type") == "Seq Scan":
            scanned.add(node.get("Relation Name", "?"))
        stack.extend(node.get("Plans", []))
    return indexes, scanned


async def measure(url: str, repeat: int) -> list[tuple[str, float, set[str], set[str]]]:
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        newest = await session.scalar(
            sa.text("SELECT max(id) FROM responses WHERE project_id = :p"), {"p": PROJECT}
        )
        conversation = (
            await session.scalar(
                sa.text("SELECT conversation_id FROM responses WHERE id = :id"), {"id": newest}
            )
            or f"conv_{1:012x}{PROJECT}"
        )
    middle = f"resp_{500_000:012x}{PROJECT}"
    now = datetime.now(UTC)
    cases: list[tuple[str, Callable[[AsyncSession], Awaitable[Any]]]] = [
        (
            "responses, newest page",
            lambda s: responses.page(
                s, PROJECT, ResponseFilters(), after=None, before=None, limit=50
            ),
        ),
        (
            "responses, a page deep in (after=)",
            lambda s: responses.page(
                s, PROJECT, ResponseFilters(), after=middle, before=None, limit=50
            ),
        ),
        (
            "status = failed (0.1%)",
            lambda s: responses.page(
                s, PROJECT, ResponseFilters(status="failed"), after=None, before=None, limit=50
            ),
        ),
        (
            "model = rare-model (0.1%)",
            lambda s: responses.page(
                s, PROJECT, ResponseFilters(model="rare-model"), after=None, before=None, limit=50
            ),
        ),
        (
            "metadata customer=c17 (0.002%)",
            lambda s: responses.page(
                s,
                PROJECT,
                ResponseFilters(metadata=("customer", "c17")),
                after=None,
                before=None,
                limit=50,
            ),
        ),
        (
            "created in one hour, 10 days ago",
            lambda s: responses.page(
                s,
                PROJECT,
                ResponseFilters(
                    created_from=now - timedelta(days=10, hours=1),
                    created_to=now - timedelta(days=10),
                ),
                after=None,
                before=None,
                limit=50,
            ),
        ),
        (
            "conversation filter",
            lambda s: responses.page(
                s,
                PROJECT,
                ResponseFilters(conversation_id=conversation),
                after=None,
                before=None,
                limit=50,
            ),
        ),
        ("model names (loose index scan)", lambda s: responses.models(s, PROJECT)),
        ("background, newest 50", lambda s: responses.background(s, PROJECT, 50)),
        ("chain of the newest (ancestors)", lambda s: responses.ancestors(s, PROJECT, newest)),
        ("branches of a chain", lambda s: responses.continuations(s, PROJECT, [middle, newest])),
        (
            "conversations, newest page",
            lambda s: conversations.page(s, PROJECT, after=None, limit=50),
        ),
    ]
    results: list[tuple[str, float, set[str], set[str]]] = []
    for name, run in cases:
        results.append(await _case(engine, sessions, name, run, repeat))
    for range_name in usage_report.RANGES:

        async def usage(s: AsyncSession, r: str = range_name) -> Any:
            window, width = usage_report.RANGES[r]
            from app.console.queries import usage as usage_queries

            return await usage_queries.buckets(s, PROJECT, now - window, width)

        results.append(await _case(engine, sessions, f"usage, last {range_name}", usage, repeat))
    await engine.dispose()
    return results


async def _case(
    engine: Any,
    sessions: Any,
    name: str,
    run: Callable[[AsyncSession], Awaitable[Any]],
    repeat: int,
) -> tuple[str, float, set[str], set[str]]:
    captured: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    timings: list[float] = []
    for attempt in range(repeat):
        if attempt == 0:
            event.listen(engine.sync_engine, "before_cursor_execute", record)
        async with sessions() as session:
            started = time.perf_counter()
            await run(session)
            timings.append((time.perf_counter() - started) * 1000)
        if attempt == 0:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
    indexes: set[str] = set()
    scanned: set[str] = set()
    async with engine.connect() as connection:
        for statement, parameters in captured:
            explained = await connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
            )
            document = explained.scalar()
            plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
            found, seq = plan_summary(plan)
            indexes |= found
            scanned |= seq
    return name, statistics.median(timings), indexes, scanned


def run(args: argparse.Namespace) -> tuple[float, list[tuple[str, float, set[str], set[str]]]]:
    name, url = create_database(args.admin_url)
    try:
        migrate(url, "head")
        seconds = asyncio.run(seed(url, args.rows))
        return seconds, asyncio.run(measure(url, args.repeat))
    finally:
        drop_database(args.admin_url, name)


def report(args: argparse.Namespace, result: Any, commit: str) -> str:
    seeded, rows = result
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## console reads · postgres · {args.rows:,} responses · {stamp} · commit {commit}",
        "",
        (
            f"One project of {args.rows:,} responses over 30 days plus a noise project of "
            f"{args.rows // 10:,}; seeded in {seeded:.0f} s, then ANALYZE; median of "
            f"{args.repeat} runs; {machine()}."
        ),
        "",
        "| query | median ms | indexes used | sequential scans |",
        "|---|---:|---|---|",
    ]
    for name, median, indexes, scanned in rows:
        lines.append(
            f"| {name} | {median:.2f} | {', '.join(sorted(indexes)) or '—'} | "
            f"{', '.join(sorted(scanned)) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    args.rev = None
    code, _ = bench_main(args, run, report)
    return code


if __name__ == "__main__":
    sys.exit(main())
