"""Time to count and truncate a long chain's context: with the item store's cached token counts
and without them (every item tokenized again, as it would be with no cache).

Seeds two identical chains of `--turns` responses (a user message and an answer each, ≈ 30
tokens apiece) straight into a throwaway Postgres database, one with counts and one without,
then times, per chain: the history read (one recursive query), and the count-and-truncate step
(`assembly.build_window` with `truncation: "auto"` and a window of half the context).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import ids
from app.context import assembly
from app.context import history as stored_history
from app.db.base import utcnow
from app.db.session import create_engine, create_sessionmaker
from app.responses import repository as items
from app.tokens.counting import TokenCounter
from tests.harness import postgres_database
from tests.test_window import JsonSealer

PROJECT = "proj_bench"
ENCODING = "o200k_base"


def _message(role: str, text: str) -> dict[str, Any]:
    part = "input_text" if role == "user" else "output_text"
    return {
        "id": ids.new_id(ids.MESSAGE),
        "type": "message",
        "role": role,
        "content": [{"type": part, "text": text}],
        "status": "completed",
    }


async def seed(sessions: Any, turns: int, cached: bool) -> str:
    counter = TokenCounter(ENCODING)
    previous: str | None = None
    now = utcnow()
    for start in range(0, turns, 200):
        async with sessions() as session, session.begin():
            for turn in range(start, min(turns, start + 200)):
                response_id = ids.new_id(ids.RESPONSE)
                await items.insert_response(
                    session,
                    {
                        "id": response_id,
                        "project_id": PROJECT,
                        "status": "completed",
                        "model": "bench",
                        "background": False,
                        "previous_response_id": previous,
                        "conversation_id": None,
                        "params": {},
                        "instructions": None,
                        "request": None,
                        "metadata": {},
                        "created_at": now,
                        "heartbeat_at": now,
                        "attempts": 1,
                    },
                )
                text = f"turn {turn}: " + " ".join(f"word{n}" for n in range(24))
                for side, body in (
                    (items.INPUT, _message("user", text)),
                    (items.OUTPUT, _message("assistant", "echo: " + text)),
                ):
                    await items.insert_items(
                        session,
                        project_id=PROJECT,
                        response_id=response_id,
                        side=side,
                        bodies=[body],
                        created_at=now,
                        token_counts=[counter.item(body)] if cached else None,
                        token_encoding=ENCODING if cached else None,
                    )
                previous = response_id
    async with sessions() as session, session.begin():
        await session.execute(sa.text("ANALYZE"))
    assert previous is not None
    return previous


async def measure(url: str, turns: int, repetitions: int) -> None:
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    counter = TokenCounter(ENCODING)
    print(f"{turns}-turn chain ({2 * turns} items); median (p99) ms over {repetitions} runs")
    print("| counts | read | count + truncate | total | kept items |")
    print("|---|---:|---:|---:|---:|")
    # Both chains first, then measured in turn: the first queries after seeding run cold.
    heads = {cached: await seed(sessions, turns, cached) for cached in (True, False)}
    for cached in (False, True):
        head = heads[cached]
        reads: list[float] = []
        fits: list[float] = []
        kept = 0
        for round_ in range(repetitions + 3):
            async with sessions() as session:
                started = time.perf_counter()
                past = await stored_history.chain(session, PROJECT, head, ENCODING)
                read = time.perf_counter() - started
            question = [_message("user", "and now?")]
            total = sum(counter.item(body) for body in past.bodies)
            budget = assembly.budget_for(
                counter, total // 2, 0, truncation="auto", instructions=None, tools=None
            )
            started = time.perf_counter()
            window = assembly.build_window(counter, budget, past, question, sealer=JsonSealer())
            fit = time.perf_counter() - started
            kept = len(window.context)
            if round_ >= 3:
                reads.append(read * 1000)
                fits.append(fit * 1000)
        both = sorted(r + f for r, f in zip(reads, fits, strict=True))
        label = "cached" if cached else "none (tokenized)"
        print(f"| {label} | {_stat(reads)} | {_stat(fits)} | {_stat(both)} | {kept} |")
    await engine.dispose()


def _stat(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered):.2f} ({p99:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--repetitions", type=int, default=30)
    args = parser.parse_args()
    with postgres_database() as url:
        asyncio.run(measure(url, args.turns, args.repetitions))


if __name__ == "__main__":
    main()
