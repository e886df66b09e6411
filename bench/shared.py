"""Pieces both benchmarks use: throwaway databases, git revisions, statistics, RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import secrets
import signal
import subprocess
import sys
import tarfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, linearly interpolated (numpy's default)."""
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def git(*argv: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def git_commit(rev: str | None = None) -> str:
    """Short hash of `rev`, or of HEAD with `+dirty` when anything outside bench/ differs."""
    try:
        if rev:
            return git("rev-parse", "--short", f"{rev}^{{commit}}")
        status = git("status", "--porcelain", "--", ".", ":!bench")
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if status else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def export_tree(rev: str, into: Path) -> Path:
    """`git archive` of `rev` unpacked in `into`: benchmark committed code while others edit."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def machine() -> str:
    """CPUs, Python and the 1-minute load average: other work on the box skews the figures."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load {load:.2f}"


def append_results(markdown: str) -> None:
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppended by `bench/latency.py` and `bench/chain.py`, "
            "newest last. See `bench/README.md` for the method.\n",
            encoding="utf-8",
        )
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n" + markdown)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def run_sql(url: str, statement: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a transaction)."""
    asyncio.run(_admin(url, statement))


def create_database(admin_url: str) -> tuple[str, str]:
    """A new empty database `rapport_bench_<hex>`: its name and its asyncpg SQLAlchemy URL."""
    name = f"rapport_bench_{secrets.token_hex(6)}"
    run_sql(admin_url, f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return name, f"{base}/{name}"


def drop_database(admin_url: str, name: str) -> None:
    run_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def describe(exc: BaseException) -> str:
    """The first real error, out of any TaskGroup's ExceptionGroup."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def cpu_seconds(pid: int) -> float | None:
    """On-CPU time of all of a process's threads so far, in seconds, or None if it is gone.

    Linux `/proc/<pid>/task/*/schedstat` counts nanoseconds, where `/proc/<pid>/stat` counts
    clock ticks (10 ms): fine enough to charge a single request. Elsewhere: None.
    """
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total / 1e9


def pids_named(command: str) -> list[int]:
    """Every process whose `comm` is `command` (say, every `postgres` backend), Linux only."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == command:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def machine_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, summed over CPUs (/proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user/nice
    return (total - idle) / tick, total / tick


T = TypeVar("T")
R = TypeVar("R")


def run_bounded(main: Awaitable[T], limit: float) -> T:
    """Run `main` on uvloop when installed, cancelled after `limit` seconds."""

    async def bounded() -> T:
        async with asyncio.timeout(limit):
            return await main

    try:
        import uvloop
    except ImportError:
        return asyncio.run(bounded())
    return uvloop.run(bounded())


def common_arguments(parser: argparse.ArgumentParser, max_seconds: float = 900.0) -> None:
    """The options every script takes: --rev, --admin-url, --max-seconds, --no-record."""
    parser.add_argument(
        "--rev", default=None, help="benchmark this git revision (exported) instead of the tree"
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="libpq URL to CREATE DB")
    parser.add_argument("--max-seconds", type=float, default=max_seconds, help="abort after this")
    parser.add_argument("--no-record", action="store_true", help="do not append RESULTS.md")


def bench_main(
    args: Any, run: Callable[[Any], R], report: Callable[[Any, R, str], str]
) -> tuple[int, R | None]:
    """What every script's main() does: pin --rev, turn SIGTERM into a clean-up, run, report.

    Returns the exit code and the run's result (None when it did not finish).
    """
    if args.rev:  # pin it now: HEAD may move while the benchmark runs
        args.rev = git("rev-parse", "--verify", f"{args.rev}^{{commit}}")

    def terminated(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    try:
        result = run(args)
    except KeyboardInterrupt:
        print("bench: interrupted; cleaned up", file=sys.stderr)
        return 130, None
    except Exception as exc:  # noqa: BLE001  (any failure: report it, exit non-zero)
        print(f"bench: failed: {describe(exc)}", file=sys.stderr)
        return 1, None
    markdown = report(args, result, git_commit(args.rev))
    print(markdown)
    if not args.no_record:
        append_results(markdown)
    return 0, result
