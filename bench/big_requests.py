"""Does one big request stall everyone? `/health` latency while a big create is processed.

Starts the test upstream (it echoes the input, so a big input also makes a big answer) and
`rapport serve` as subprocesses on a throwaway Postgres database, then, for each case, sends one
big non-streaming `POST /v1/responses` while a second connection calls `GET /health` every
10 ms. Reported per case: how long the big create took, how many `/health` answers came
back meanwhile, and their median and worst latency. An event loop blocked by the big request
shows as a worst `/health` latency close to the create's own duration.

Cases: `text-5mb` (one message of ~5 MB of words), `word-9mb` (one 9 MB word, tiktoken's
slowest input), `items-100k` (100,000 one-word messages).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from latency import serving
from shared import DEFAULT_ADMIN_URL, bench_main, machine, percentile

MODEL = "test-model"
# Between /health calls: back to back, they would take a core from the big request itself.
PROBE_INTERVAL_S = 0.01


def cases() -> dict[str, dict[str, Any]]:
    words = " ".join(f"w{n}" for n in range(600_000))  # ~5 MB
    return {
        "text-5mb": {"model": MODEL, "input": words},
        "word-9mb": {"model": MODEL, "input": "a" * 9_000_000},
        "items-100k": {
            "model": MODEL,
            "input": [{"role": "user", "content": f"w{n}"} for n in range(100_000)],
        },
    }


@dataclass
class Case:
    name: str
    request_mb: float
    status: int
    create_s: float
    health_calls: int
    health_median_ms: float
    health_max_ms: float


async def one_case(base: str, secret: str, name: str, body: dict[str, Any]) -> Case:
    payload = msgspec.json.encode(body)
    headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
    latencies: list[float] = []
    done = asyncio.Event()
    async with (
        httpx.AsyncClient(base_url=base, timeout=600) as api,
        httpx.AsyncClient(base_url=base, timeout=600) as probe,
    ):
        await probe.get("/health")  # the probe's connection is open before the create starts

        async def poll() -> None:
            while not done.is_set():
                started = time.perf_counter()
                answer = await probe.get("/health")
                answer.raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(PROBE_INTERVAL_S)

        poller = asyncio.create_task(poll())
        started = time.perf_counter()
        answer = await api.post("/v1/responses", content=payload, headers=headers)
        create_s = time.perf_counter() - started
        done.set()
        await poller
    ordered = sorted(latencies)
    return Case(
        name,
        len(payload) / 1e6,
        answer.status_code,
        create_s,
        len(ordered),
        percentile(ordered, 50),
        ordered[-1] if ordered else float("nan"),
    )


def run(args: argparse.Namespace) -> list[Case]:
    with serving(args) as served:
        base = f"http://127.0.0.1:{served.gateway_port}"
        chosen = cases()
        results = []
        for name in args.cases:
            for _ in range(args.repeat):
                case = asyncio.run(one_case(base, served.secret, name, chosen[name]))
                served.stack.check_alive()
                if case.status != 200:  # say why beside the figures
                    log_path = served.stack.procs["rapport"][1]
                    print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
                results.append(case)
        return results


def report(args: argparse.Namespace, results: list[Case], commit: str) -> str:
    lines = [
        f"## big_requests.py — {commit}, {machine()}",
        "",
        (
            "One big non-streaming create while `/health` is called every 10 ms on another "
            "connection (Postgres, the test upstream echoing the input)."
        ),
        "",
        (
            "| case | request MB | status | create s | /health calls | /health median ms "
            "| /health worst ms |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in results:
        lines.append(
            f"| {case.name} | {case.request_mb:.1f} | {case.status} | {case.create_s:.2f} "
            f"| {case.health_calls} | {case.health_median_ms:.1f} | {case.health_max_ms:.1f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--cases", nargs="+", choices=sorted(cases()), default=["text-5mb", "word-9mb"]
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs of each case (default 2)")
    parser.add_argument("--rev", default=None, help="benchmark this git revision instead")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="libpq URL to CREATE DB")
    parser.add_argument("--no-record", action="store_true", help="do not append RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    code, _result = bench_main(parse_args(argv), run, report)
    return code


if __name__ == "__main__":
    sys.exit(main())
