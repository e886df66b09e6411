"""Time to build the context of a conversation of 1,000 and 10,000 items, and its query count."""

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
from app.context import history as stored_history
from app.conversations import repository as conversations
from app.db.base import utcnow
from app.db.session import create_engine, create_sessionmaker
from app.responses import repository as items
from tests.harness import postgres_database

PROJECT = "proj_bench"


async def seed(sessions: Any, size: int) -> str:
    """A conversation of `size` user/assistant messages, written 500 at a time."""
    conversation_id = ids.new_id(ids.CONVERSATION)
    now = utcnow()
    async with sessions() as session, session.begin():
        await conversations.insert(
            session,
            {"id": conversation_id, "project_id": PROJECT, "metadata_": {}, "created_at": now},
        )
    for start in range(0, size, 500):
        bodies = [
            {
                "id": ids.new_id(ids.MESSAGE),
                "type": "message",
                "role": "user" if n % 2 == 0 else "assistant",
                "content": [{"type": "input_text", "text": f"turn {n} " + "word " * 20}],
                "status": "completed",
            }
            for n in range(start, min(size, start + 500))
        ]
        async with sessions() as session, session.begin():
            await items.insert_items(
                session,
                project_id=PROJECT,
                response_id=None,
                side=items.INPUT,
                bodies=bodies,
                created_at=now,
            )
            await conversations.append(session, conversation_id, [b["id"] for b in bodies])
    async with sessions() as session, session.begin():
        await session.execute(sa.text("ANALYZE"))
    return conversation_id


async def measure(url: str, sizes: list[int], repetitions: int) -> None:
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    statements: list[str] = []
    sa.event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    print("| items | statements | context median ms | p99 ms |")
    print("|---:|---:|---:|---:|")
    for size in sizes:
        conversation_id = await seed(sessions, size)
        timings: list[float] = []
        counts: set[int] = set()
        for round_ in range(repetitions + 5):
            async with sessions() as session:
                await session.begin()
                statements.clear()
                started = time.perf_counter()
                history = await stored_history.conversation(
                    session,
                    PROJECT,
                    conversation_id,
                    f"resp_bench{round_}",
                    utcnow(),
                    30.0,
                    "o200k_base",
                )
                elapsed = time.perf_counter() - started
                counts.add(len(statements))
                await session.rollback()  # leave the lease untaken for the next round
            assert len(history.bodies) == size
            if round_ >= 5:
                timings.append(elapsed * 1000)
        timings.sort()
        p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        print(f"| {size} | {sorted(counts)} | {statistics.median(timings):.2f} | {p99:.2f} |")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repetitions", type=int, default=50)
    args = parser.parse_args()
    with postgres_database() as url:
        asyncio.run(measure(url, [int(n) for n in args.sizes.split(",")], args.repetitions))


if __name__ == "__main__":
    main()
