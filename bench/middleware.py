"""What the access log and the HTTP metrics add to one request, measured without the network.

A trivial ASGI app (one JSON answer) is called directly and through `AccessLog`, first with the
access log below its level (the metrics alone: the counter, the histogram, the facts context
variable, the send wrapper) and then writing each JSON line to /dev/null. Each variant runs
`--rounds` rounds of `--calls` calls and keeps its best round, so a busy shared machine skews
it less than a latency run would.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared import append_results, git_commit, machine

from app.logs import JsonFormatter
from app.observability.access import AccessLog

BODY = b'{"id":"resp_x","object":"response"}'
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json")],
}


async def app(scope: Any, receive: Any, send: Any) -> None:
    scope["path_template"] = "/v1/responses"  # what Litestar's router sets
    await send(START)
    await send({"type": "http.response.body", "body": BODY})


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(_message: Any) -> None:
    return None


def scope() -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/v1/responses", "headers": []}


async def best_round(target: Any, calls: int, rounds: int) -> float:
    """Microseconds per call in the fastest round."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            await target(scope(), receive, send)
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


async def measure(calls: int, rounds: int, sink: Any) -> dict[str, float]:
    access = logging.getLogger("rapport.access")
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    access.addHandler(handler)
    access.propagate = False
    wrapped = AccessLog(app)
    await best_round(wrapped, calls // 10, 1)  # warm the label children
    access.setLevel(logging.WARNING)
    bare = await best_round(app, calls, rounds)
    metrics_only = await best_round(wrapped, calls, rounds)
    access.setLevel(logging.INFO)
    with_log = await best_round(wrapped, calls, rounds)
    return {"bare": bare, "metrics": metrics_only, "log": with_log}


def report(args: argparse.Namespace, figures: dict[str, float], commit: str) -> str:
    bare = figures["bare"]
    return "\n".join(
        [
            f"## middleware · access log and metrics · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · commit {commit}",
            "",
            f"Best of {args.rounds} rounds of {args.calls} calls of a trivial ASGI app; {machine()}.",
            "",
            "| path | µs per request | added µs |",
            "|---|---:|---:|",
            f"| app alone | {bare:.2f} | |",
            f"| + metrics (access log below its level) | {figures['metrics']:.2f} | **{figures['metrics'] - bare:.2f}** |",
            f"| + metrics + one JSON access line | {figures['log']:.2f} | {figures['log'] - bare:.2f} |",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with open(os.devnull, "w") as sink:
        figures = asyncio.run(measure(args.calls, args.rounds, sink))
    markdown = report(args, figures, git_commit(None))
    print(markdown)
    if not args.no_record:
        append_results(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
