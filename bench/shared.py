"""Pieces both benchmarks use: throwaway databases, git revisions, statistics, RESULTS.md."""

from __future__ import annotations

import asyncio
import io
import os
import platform
import secrets
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

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
