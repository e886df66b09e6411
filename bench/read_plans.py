"""Context reads with and without planner statistics, on the database tests/test_query_plans.py
judges the plans of: 3 chains of 1,000 turns, a 10,000-item conversation among 200 of 100.

For each state of that test (never analyzed, as a new deployment is; analyzed while small;
analyzed once full) it times the history functions a turn calls, in process:
the chain at depth 1,000 and the big conversation, each cut to a 3,000-token window and read
whole; the chain's cut also on a chain without running counts (one begun before migration
0011), which is walked whole. Interleaved rounds; the conversation's lock is rolled back after every read.

    python bench/read_plans.py [--rounds 50] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared import append_results, git_commit, machine

from app.db.session import create_engine, create_sessionmaker
from tests.test_query_plans import (
    HEAD,
    STATES,
    UNCOUNTED_HEAD,
    a_turn_after,
    a_turn_on,
    database_in,
)

READS = {
    "chain depth 1,000, window": a_turn_after(HEAD, 3_000),
    "chain depth 1,000, window, no running counts": a_turn_after(UNCOUNTED_HEAD, 3_000),
    "chain depth 1,000, whole": a_turn_after(HEAD, None),
    "conversation 10,000 items, window": a_turn_on("conv_plan_big", 3_000),
    "conversation 10,000 items, whole": a_turn_on("conv_plan_big", None),
}


async def timed(urls: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    """Median ms per state and read; each round runs every read in every state in turn."""
    engines = {state: create_engine(url) for state, url in urls.items()}
    times: dict[str, dict[str, list[float]]] = {s: {name: [] for name in READS} for s in urls}
    try:
        for round_ in range(rounds + 3):
            for state, engine in engines.items():
                for name, read in READS.items():
                    async with create_sessionmaker(engine)() as session:
                        await session.begin()
                        started = time.perf_counter()
                        await read(session)
                        elapsed = time.perf_counter() - started
                        await session.rollback()
                    if round_ >= 3:
                        times[state][name].append(elapsed * 1000)
    finally:
        for engine in engines.values():
            await engine.dispose()
    return {
        state: {name: statistics.median(values) for name, values in reads.items()}
        for state, reads in times.items()
    }


def measure(rounds: int) -> dict[str, dict[str, float]]:
    with contextlib.ExitStack() as stack:
        urls = {}
        for state in STATES:
            urls[state] = stack.enter_context(database_in(state))
        return asyncio.run(timed(urls, rounds))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    box = machine()
    results = measure(args.rounds)
    header = "| read (median ms) | " + " | ".join(results) + " |"
    rule = "|---|" + "---:|" * len(results)
    rows = [
        f"| {name} | " + " | ".join(f"{results[s][name]:.2f}" for s in results) + " |"
        for name in READS
    ]
    report = "\n".join(
        [
            (
                f"## bench/read_plans.py — {time.strftime('%Y-%m-%d %H:%M')} · commit "
                f"{git_commit()} · {box}"
            ),
            "",
            f"History functions in process, median of {args.rounds} interleaved rounds.",
            "",
            header,
            rule,
            *rows,
            "",
        ]
    )
    print(report)
    if not args.no_record:
        append_results(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
