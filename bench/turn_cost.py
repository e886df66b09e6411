"""What one more turn costs as the history grows: a conversation of 100 vs 10,000 items and a
`previous_response_id` chain 1 vs 1,000 deep, end to end through `rapport serve` on Postgres.

The model's route has a 4,096-token window and the turns use `truncation: "auto"`, so most of
the long histories cannot be sent: what a turn should cost is what fits, not what is stored.
The histories are made through the API (Rapport counts and stores every item as in
production); the chain's turns branch from its head, so its depth stays fixed. Rounds
interleave the sizes, so drifting load hits all of them alike. Tables are left as a fresh
deployment has them — never analyzed (the local Postgres runs without autovacuum) — unless
`--analyze`. `--rev REV` serves a committed revision instead, for before/after figures.

    python bench/turn_cost.py [--rounds 40] [--analyze] [--rev REV]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from latency import Stack, free_port, rapport_executable, run_cli, wait_ready
from shared import DEFAULT_ADMIN_URL, create_database, drop_database, export_tree, machine

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench-model"
WORDS = "the quick brown fox jumps over the lazy dog " * 3  # ≈ 30 tokens an item


def models_file(tmp: Path, upstream_port: int) -> Path:
    path = tmp / "models.toml"
    path.write_text(
        "[[models]]\n"
        f'name = "{MODEL}"\n'
        f'base_url = "http://127.0.0.1:{upstream_port}/v1"\n'
        "context_window = 4096\nmax_output_tokens = 256\n"
    )
    return path


async def seed_conversation(client: httpx.AsyncClient, items: int) -> str:
    conversation = (await client.post("/conversations", json={})).json()["id"]
    for start in range(0, items, 20):
        batch = [
            {
                "type": "message",
                "role": "user" if n % 2 == 0 else "assistant",
                "content": f"{n} {WORDS}",
            }
            for n in range(start, min(items, start + 20))
        ]
        answer = await client.post(f"/conversations/{conversation}/items", json={"items": batch})
        answer.raise_for_status()
    return str(conversation)


async def seed_chain(client: httpx.AsyncClient, depth: int) -> str:
    previous: str | None = None
    for n in range(depth):
        body = {"model": MODEL, "input": f"{n} {WORDS}", "truncation": "auto"}
        if previous:
            body["previous_response_id"] = previous
        answer = await client.post("/responses", json=body)
        answer.raise_for_status()
        previous = answer.json()["id"]
    assert previous is not None
    return previous


async def turn(client: httpx.AsyncClient, **fields: str) -> float:
    body = {"model": MODEL, "input": "one more turn", "truncation": "auto", **fields}
    started = time.perf_counter()
    answer = await client.post("/responses", json=body)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"turn failed: {answer.status_code} {answer.text[:300]}")
    return elapsed


async def measure(args: argparse.Namespace, base_url: str, secret: str, db_url: str) -> str:
    headers = {"authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as client:
        targets = {
            "conversation, 100 items": {"conversation": await seed_conversation(client, 100)},
            "conversation, 10,000 items": {"conversation": await seed_conversation(client, 10_000)},
            "chain, depth 1": {"previous_response_id": await seed_chain(client, 1)},
            "chain, depth 1,000": {"previous_response_id": await seed_chain(client, 1_000)},
        }
        if args.analyze:
            connection = await asyncpg.connect(db_url)
            await connection.execute("ANALYZE")
            await connection.close()
        times: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.warmup):
            for fields in targets.values():
                await turn(client, **fields)
        for _ in range(args.rounds):
            for name, fields in targets.items():
                times[name].append(await turn(client, **fields))
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    rows = "\n".join(f"| {name} | {value:.2f} |" for name, value in medians.items())
    conversation = medians["conversation, 10,000 items"] / medians["conversation, 100 items"]
    chain = medians["chain, depth 1,000"] / medians["chain, depth 1"]
    served = args.rev or "working tree"
    return (
        f"## bench/turn_cost.py — {time.strftime('%Y-%m-%d')} ({machine()}), {served}, "
        f"tables {'analyzed' if args.analyze else 'never analyzed'}\n\n"
        f"| one more turn (median of {args.rounds}) | ms |\n|---|---|\n{rows}\n\n"
        f"10,000 / 100 items: **{conversation:.2f}x**; depth 1,000 / 1: **{chain:.2f}x** "
        "(target ≤ 1.5x each).\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--analyze", action="store_true", help="ANALYZE after seeding")
    parser.add_argument("--rev", default=None, help="serve this git revision instead")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    stack = Stack()
    try:
        tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-turns-"))
        stack.push("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
        name, url = create_database(args.admin_url)
        stack.push(f"database {name}", lambda: drop_database(args.admin_url, name))
        source = export_tree(args.rev, tmp / "source") if args.rev else ROOT
        upstream_port, gateway_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env |= {
            "RAPPORT_DATABASE_URL": url,
            "RAPPORT_UPSTREAM_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
            "RAPPORT_UPSTREAM_API_KEY": "sk-upstream-bench",
            "RAPPORT_MODELS": str(models_file(tmp, upstream_port)),
            "RAPPORT_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(source),  # the checkout's app/, not the editable install's
        }
        rapport = rapport_executable()
        run_cli([rapport, "db", "upgrade"], env, source)
        secret = run_cli([rapport, "keys", "create", "--name", "bench"], env, source).splitlines()[
            -1
        ]
        upstream = [
            sys.executable,
            str(ROOT / "tests" / "upstream.py"),
            "--port",
            str(upstream_port),
        ]
        stack.spawn("upstream", upstream, env, tmp, ROOT)
        stack.spawn("rapport", [rapport, "serve", "--port", str(gateway_port)], env, tmp, source)
        wait_ready(stack, f"http://127.0.0.1:{upstream_port}/v1/models")
        wait_ready(stack, f"http://127.0.0.1:{gateway_port}/health")
        libpq = url.replace("+asyncpg", "", 1)
        report = asyncio.run(measure(args, f"http://127.0.0.1:{gateway_port}/v1", secret, libpq))
        print(report)
        return 0
    finally:
        stack.close()


if __name__ == "__main__":
    raise SystemExit(main())
