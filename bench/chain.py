"""Time to rebuild a previous_response_id chain (history.chain) at depths 2, 20, 200, 1000."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import asyncpg
from shared import (
    DEFAULT_ADMIN_URL,
    ROOT,
    bench_main,
    create_database,
    drop_database,
    export_tree,
    machine,
    percentile,
)

if TYPE_CHECKING:
    from app.runtime import Runtime

DEPTHS = (2, 20, 200, 1000)
MODEL = "test-model"
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "the",
    "gateway",
    "keeps",
    "every",
    "turn",
]


@dataclass
class DepthResult:
    depth: int
    items: int
    statements: int
    history_ms: list[float]
    unit_ms: list[float]
    postgres_ms: float
    seed_s: float


def turn_text(turn: int) -> str:
    """A user message of ~25 words, different every turn (the upstream echoes it back)."""
    words = [WORDS[(turn + i) % len(WORDS)] for i in range(24)]
    return f"turn {turn}: " + " ".join(words)


async def seed(runtime: Runtime, project_id: str, depths: Sequence[int]) -> dict[int, Any]:
    """One chain per depth, built by the real create path (ResponseService.create against the
    test upstream): each turn stores 1 input user message and 1 output assistant message.
    Chains are built side by side; within a chain every turn continues the previous one."""
    from app.auth import Caller
    from app.responses.service import ResponseService
    from app.wire.responses import CreateResponseRequest

    service = ResponseService(runtime)
    caller = Caller(project_id=project_id, key_id="key_bench")
    heads: dict[int, Any] = {}

    async def chain(depth: int) -> None:
        started = time.perf_counter()
        previous: str | None = None
        for turn in range(depth):
            request = CreateResponseRequest(
                model=MODEL, input=turn_text(turn), previous_response_id=previous
            )
            response = await service.create(caller, request)
            if response.status != "completed":
                raise RuntimeError(f"seeding turn {turn} of depth {depth}: {response.status}")
            previous = response.id
        heads[depth] = (previous, time.perf_counter() - started)

    async with asyncio.TaskGroup() as group:
        for depth in depths:
            group.create_task(chain(depth))
    return heads


async def add_filler(runtime: Runtime, project_ids: Sequence[str], count: int) -> None:
    """`count` unrelated single-turn responses spread over `project_ids`, so the tables and the
    benchmark project are not tiny. Each copies a response made by `ResponseService.create`
    (row and items, bodies included) under new ids, in batches through the same ORM inserts
    `repository.insert_response` / `insert_items` use."""
    import sqlalchemy as sa

    from app.auth import Caller
    from app.db.base import utcnow
    from app.db.models import Item, ResponseRow
    from app.db.session import unit_of_work
    from app.ids import MESSAGE, RESPONSE, new_id
    from app.responses.service import ResponseService
    from app.wire.responses import CreateResponseRequest

    if count <= 0:
        return
    caller = Caller(project_id=project_ids[0], key_id="key_bench")
    request = CreateResponseRequest(model=MODEL, input=turn_text(0))
    template_id = (await ResponseService(runtime).create(caller, request)).id
    async with unit_of_work(runtime.sessions) as session:
        template = await session.get_one(ResponseRow, template_id)
        row = {
            attr.key: getattr(template, attr.key) for attr in sa.inspect(ResponseRow).column_attrs
        }
        items = [
            {attr.key: getattr(item, attr.key) for attr in sa.inspect(Item).column_attrs}
            for item in await session.scalars(
                sa.select(Item).where(Item.response_id == template_id)
            )
        ]
    for start in range(1, count, 1000):
        rows: list[dict[str, Any]] = []
        bodies: list[dict[str, Any]] = []
        for number in range(start, min(start + 1000, count)):
            response_id = new_id(RESPONSE)
            project_id = project_ids[number % len(project_ids)]
            rows.append(row | {"id": response_id, "project_id": project_id, "created_at": utcnow()})
            for item in items:
                item_id = new_id(MESSAGE)
                body = item["body"] | {"id": item_id}
                bodies.append(
                    item
                    | {"id": item_id, "project_id": project_id, "response_id": response_id}
                    | {"body": body, "created_at": utcnow()}
                )
        async with unit_of_work(runtime.sessions) as session:
            await session.execute(sa.insert(ResponseRow), rows)
            await session.execute(sa.insert(Item), bodies)


async def analyze(runtime: Runtime) -> None:
    """Gather planner statistics, as autovacuum does on a running server (committed: an
    ANALYZE that is rolled back leaves no statistics behind)."""
    async with runtime.engine.begin() as connection:
        await connection.exec_driver_sql("ANALYZE")


class StatementLog:
    """SQL statements the engine sends while open (SQLAlchemy `before_cursor_execute`)."""

    def __init__(self, sync_engine: Any) -> None:
        self._engine = sync_engine
        self.statements: list[tuple[str, Any]] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statements.append((statement, parameters))

    def __enter__(self) -> Self:
        from sqlalchemy import event

        event.listen(self._engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc: object) -> None:
        from sqlalchemy import event

        event.remove(self._engine, "before_cursor_execute", self._record)


async def postgres_execution_ms(libpq_url: str, statements: list[tuple[str, Any]]) -> float:
    """Server-side time of the statements one history() call ran (EXPLAIN ANALYZE, best of 5)."""
    connection = await asyncpg.connect(libpq_url)
    try:
        total = 0.0
        for statement, parameters in statements:
            runs = []
            for _ in range(5):
                plan = await connection.fetchval(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *(parameters or ())
                )
                runs.append(float(json.loads(plan)[0]["Execution Time"]))
            total += min(runs)
        return total
    finally:
        await connection.close()


async def measure(args: argparse.Namespace, url: str) -> list[DepthResult]:
    from app.config import Settings
    from app.context import history as stored_history
    from app.db.session import unit_of_work
    from app.ids import PROJECT, new_id
    from app.runtime import Runtime
    from tests.upstream import TestUpstream

    upstream = TestUpstream(record=False).start()
    settings = Settings(database_url=url, upstream_base_url=upstream.base_url, log_level="WARNING")
    runtime = Runtime(settings)
    libpq_url = url.replace("+asyncpg", "", 1)
    try:
        await runtime.open()  # the sealing key and token encodings, as the server's start-up
        project_id = new_id(PROJECT)
        if args.no_analyze:
            # No statistics at all, deterministically: what a table looks like before
            # autovacuum first gets to it.
            async with runtime.engine.begin() as connection:
                for table in ("responses", "items"):
                    await connection.exec_driver_sql(
                        f"ALTER TABLE {table} SET (autovacuum_enabled = false)"
                    )
        others = [new_id(PROJECT) for _ in range(max(0, args.projects - 1))]
        print(f"seeding {args.filler} filler responses …", file=sys.stderr)
        await add_filler(runtime, [project_id, *others], args.filler)
        if not args.no_analyze:
            await analyze(runtime)
        print(f"seeding chains of depth {', '.join(map(str, args.depths))} …", file=sys.stderr)
        heads = await seed(runtime, project_id, args.depths)
        if not args.no_analyze:
            await analyze(runtime)

        async def once(head: str) -> tuple[float, float, int]:
            started = time.perf_counter_ns()
            async with unit_of_work(runtime.sessions) as session:
                await session.connection()  # pool checkout + pre-ping, outside history()
                before = time.perf_counter_ns()
                history = await stored_history.chain(session, project_id, head, "o200k_base")
                after = time.perf_counter_ns()
            ended = time.perf_counter_ns()
            return (after - before) / 1e6, (ended - started) / 1e6, len(history.bodies)

        results: dict[int, DepthResult] = {}
        for depth in args.depths:
            head, seed_s = heads[depth]
            with StatementLog(runtime.engine.sync_engine) as log:
                _, _, items = await once(head)
            if items != 2 * depth:
                raise RuntimeError(f"depth {depth}: history has {items} items, not {2 * depth}")
            server = await postgres_execution_ms(libpq_url, log.statements)
            results[depth] = DepthResult(depth, items, len(log.statements), [], [], server, seed_s)
        for _ in range(args.warmup):
            for depth in args.depths:
                await once(heads[depth][0])
        # Round-robin over the depths, rotating who goes first, so drift hits all equally.
        for repetition in range(args.repetitions):
            shift = repetition % len(args.depths)
            for depth in [*args.depths[shift:], *args.depths[:shift]]:
                history_ms, unit_ms, _ = await once(heads[depth][0])
                results[depth].history_ms.append(history_ms)
                results[depth].unit_ms.append(unit_ms)
        return [results[depth] for depth in args.depths]
    finally:
        await runtime.close()
        upstream.stop()


def report(args: argparse.Namespace, results: list[DepthResult], commit: str, box: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    stats = "no statistics (no ANALYZE, autovacuum off)" if args.no_analyze else "ANALYZEd"
    lines = [
        f"## chain rebuild · postgres · {when} · commit {commit}",
        "",
        (
            f"`stored_history.chain(session, project_id, head_id)` in-process, {args.repetitions} "
            f"calls per depth after {args.warmup} warm-up rounds, depths round-robin. Each turn "
            "= 1 user message + 1 assistant message, made by `ResponseService.create`; "
            f"{args.filler} filler responses over {args.projects} projects (the chains' own "
            f"included); {stats}; {box}."
        ),
        "",
        (
            "| depth | items | SQL statements | history() median ms | p99 ms "
            "| unit of work + history() median ms | p99 ms | Postgres execution ms |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        history = sorted(r.history_ms)
        unit = sorted(r.unit_ms)
        lines.append(
            f"| {r.depth} | {r.items} | {r.statements} | {percentile(history, 50):.2f} "
            f"| {percentile(history, 99):.2f} | {percentile(unit, 50):.2f} "
            f"| {percentile(unit, 99):.2f} | {r.postgres_ms:.2f} |"
        )
    counts = {r.statements for r in results}
    verdict = "identical at every depth" if len(counts) == 1 else "DIFFERS between depths"
    lines += [
        "",
        f"Statement count {verdict}. `history()` excludes pool checkout and pre-ping but "
        "includes the lazy BEGIN, as in `ResponseService`; the unit-of-work column adds "
        "checkout, pre-ping and COMMIT. Postgres execution = EXPLAIN ANALYZE of the same "
        "statements (best of 5). Seeding took "
        + ", ".join(f"{r.seed_s:.1f} s (depth {r.depth})" for r in results)
        + ".",
        "",
    ]
    return "\n".join(lines)


def run_loop(main: Awaitable[list[DepthResult]], limit: float) -> list[DepthResult]:
    async def bounded() -> list[DepthResult]:
        async with asyncio.timeout(limit):
            return await main

    try:
        import uvloop
    except ImportError:
        return asyncio.run(bounded())
    return uvloop.run(bounded())


def run(args: argparse.Namespace) -> tuple[list[DepthResult], str]:
    undo: list[Callable[[], None]] = []
    try:
        tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
        undo.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
        # `app` and `tests` come from the work tree, or from an exported revision with --rev.
        source = export_tree(args.rev, tmp / "source") if args.rev else ROOT
        sys.path.insert(0, str(source))
        from app.cli import migrate

        name, url = create_database(args.admin_url)
        undo.append(lambda: drop_database(args.admin_url, name))
        migrate(url, "head")
        box = machine()
        return run_loop(measure(args, url), args.max_seconds), box
    finally:
        for step in reversed(undo):
            try:
                step()
            except Exception as exc:  # noqa: BLE001  (keep undoing the rest)
                print(f"bench: cleanup failed: {exc!r}", file=sys.stderr)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--depths",
        type=lambda text: tuple(int(d) for d in text.split(",")),
        default=DEPTHS,
        help="comma-separated chain depths (default 2,20,200,1000)",
    )
    parser.add_argument("--repetitions", type=int, default=200, help="timed calls per depth")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first (20)")
    parser.add_argument(
        "--filler",
        type=int,
        default=20000,
        help="unrelated single-turn responses seeded first (default 20000)",
    )
    parser.add_argument(
        "--projects",
        type=int,
        default=10,
        help="filler is spread over this many projects, the benchmark's own included (10)",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="never ANALYZE and keep autovacuum off: plans made without any statistics",
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="libpq URL to CREATE DB")
    parser.add_argument("--rev", default=None, help="benchmark this git revision's code")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="abort after this")
    parser.add_argument("--no-record", action="store_true", help="do not append RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    def report_run(args: Any, outcome: tuple[Any, Any], commit: str) -> str:
        results, box = outcome
        return report(args, results, commit, box)

    code, outcome = bench_main(parse_args(argv), run, report_run)
    if outcome is not None and len({r.statements for r in outcome[0]}) != 1:
        print("bench: the statement count differs between depths", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
