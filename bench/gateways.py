"""Rapport side by side with the floor app and, optionally, a second gateway, in one run.

Every target faces the same client and the same fake upstream (`tests/upstream.py`, answering
at once), and the rounds are interleaved (Rapport, floor, other; then rotated), so load from
other work on the machine lands on every column alike and the ratios stay meaningful when the
absolute figures do not. Per round and target: added latency at concurrency 1 (the target's
request minus the same question sent straight to the upstream, in interleaved pairs), then
requests/s at `--clients` closed-loop clients, then the target's resident memory.

The second gateway is any command given as `--other-command`, with `{port}` and `{upstream}`
(the fake upstream's `/v1` URL) filled in; for the LiteLLM proxy see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from latency import (
    CLIENTS,
    MODEL,
    PROMPT,
    Endpoint,
    Samples,
    Stack,
    Summary,
    database,
    free_port,
    interleaved,
    prepare_rapport,
    rapport_env,
    throughput,
    wait_ready,
)
from shared import (
    bench_main,
    common_arguments,
    cpu_seconds,
    export_tree,
    machine,
    run_bounded,
    run_sql,
)

CHAT_BODY = msgspec.json.encode({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]})
RESPONSES_BODY = msgspec.json.encode({"model": MODEL, "input": PROMPT})


@dataclass
class Target:
    name: str
    endpoint: Endpoint
    pid: int


@dataclass
class Figures:
    """One target's figures, one entry per round."""

    rps: list[float] = field(default_factory=list)
    added_median: list[float] = field(default_factory=list)
    added_p99: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # per request, in the throughput phase


@dataclass
class Measurement:
    names: list[str]
    figures: dict[str, Figures]
    direct_rps: list[float]
    machine_before: str
    machine_after: str


def process_tree(pid: int) -> list[int]:
    """A process and its descendants: a gateway may fork workers."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pending += [int(child) for child in task.read_text().split()]
    return found


def tree_rss_mb(pid: int) -> float:
    total_kb = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(member) or 0.0 for member in process_tree(pid))


async def measure_round(
    args: argparse.Namespace, targets: list[Target], direct: Endpoint, result: Measurement
) -> None:
    for target in targets:
        figures = result.figures[target.name]
        samples = Samples()
        await interleaved(CLIENTS[args.client], direct, target.endpoint, args.pairs, 1, samples)
        added = Summary.of(samples.gateway).minus(Summary.of(samples.direct))
        figures.added_median.append(added.median)
        figures.added_p99.append(added.p99)
        cpu_before = tree_cpu_seconds(target.pid)
        rps = await throughput(CLIENTS[args.client], target.endpoint, args.requests, args.clients)
        figures.cpu_ms.append((tree_cpu_seconds(target.pid) - cpu_before) * 1000 / args.requests)
        figures.rps.append(rps)
        figures.rss_mb.append(tree_rss_mb(target.pid))
    result.direct_rps.append(
        await throughput(CLIENTS[args.client], direct, args.requests, args.clients)
    )


async def measure(
    args: argparse.Namespace, targets: list[Target], direct: Endpoint, libpq_url: str
) -> Measurement:
    for target in targets:  # warm up: connection pools, caches, the planner's statistics
        await interleaved(
            CLIENTS[args.client], direct, target.endpoint, args.warmup, args.clients, None
        )
    await asyncio.to_thread(run_sql, libpq_url, "ANALYZE")
    result = Measurement(
        [t.name for t in targets], {t.name: Figures() for t in targets}, [], "", ""
    )
    result.machine_before = machine()
    for number in range(args.rounds):
        shift = number % len(targets)
        await measure_round(args, targets[shift:] + targets[:shift], direct, result)
        print(f"bench: round {number + 1}/{args.rounds} done", file=sys.stderr)
    result.machine_after = machine()
    return result


def report(args: argparse.Namespace, result: Measurement, commit: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    median = statistics.median
    rapport = result.figures["rapport"]
    lines = [
        f"## gateways side by side · postgres · {when} · commit {commit}",
        "",
        (
            f"{args.rounds} interleaved rounds (order rotated each round); per round and target "
            f"{args.pairs} pairs at concurrency 1 for the added latency (target - the same "
            f"question straight to the upstream), then {args.requests} requests from "
            f"{args.clients} clients; the fake upstream answers at once; client `{args.client}`. "
            f"Figures are medians over the rounds. Before: {result.machine_before}; after: "
            f"{result.machine_after}."
        ),
        "",
        (
            f"| target | req/s at {args.clients} clients | req/s vs Rapport | added median ms | "
            "added p99 ms | CPU ms per request | RSS MB |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in result.names:
        figures = result.figures[name]
        lines.append(
            f"| {name} | {median(figures.rps):.0f} | "
            f"{median(figures.rps) / median(rapport.rps):.2f}x | "
            f"{median(figures.added_median):.2f} | {median(figures.added_p99):.2f} | "
            f"{median(figures.cpu_ms):.2f} | {max(figures.rss_mb):.0f} |"
        )
    floor = result.figures["floor"]
    ratios = [ours / theirs for ours, theirs in zip(rapport.rps, floor.rps, strict=True)]
    lines += [
        f"| upstream alone (direct) | {median(result.direct_rps):.0f} | | | | | |",
        "",
        (
            f"**Rapport / floor throughput: {median(ratios):.2f}x** (per round: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + "). Rapport's added latency per round (median ms): "
            + ", ".join(f"{v:.2f}" for v in rapport.added_median)
            + "."
        ),
    ]
    if args.other_command:
        lines.append(f"Other gateway: `{args.other_command}` on `{args.other_path}`.")
    lines.append("")
    return "\n".join(lines)


def endpoint(port: int, path: str, secret: str, body: bytes, expect: bytes) -> Endpoint:
    headers = (("Authorization", f"Bearer {secret}"),)
    return Endpoint("127.0.0.1", port, path, headers, body, expect)


def run(args: argparse.Namespace) -> Measurement:
    stack = Stack()
    try:
        tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
        stack.push("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
        args.database = "postgres"
        with database(args, stack, tmp) as url:
            upstream_port, rapport_port, floor_port = free_port(), free_port(), free_port()
            upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
            env = rapport_env(url, upstream_url)
            source, rapport, secret = prepare_rapport(args.rev, env, tmp)
            upstream = [sys.executable, str(source / "tests" / "upstream.py")]
            stack.spawn("upstream", [*upstream, "--port", str(upstream_port)], env, tmp, source)
            serve = [rapport, "serve", "--port", str(rapport_port)]
            stack.spawn("rapport", serve, env, tmp, source)
            variants = [
                spawn_variant(spec, stack, rapport, env, tmp, source) for spec in args.variant
            ] + [spawn_revision(spec, stack, rapport, env, tmp) for spec in args.revision]
            floor = [sys.executable, str(source / "bench" / "floor_app.py")]
            stack.spawn("floor", [*floor, "--port", str(floor_port)], env, tmp, source)
            wait_ready(stack, f"{upstream_url}/models")
            wait_ready(stack, f"http://127.0.0.1:{rapport_port}/health")
            wait_ready(stack, f"http://127.0.0.1:{floor_port}/health")
            completed = b'"status":"completed"'
            targets = [
                Target(
                    "rapport",
                    endpoint(rapport_port, "/v1/responses", secret, RESPONSES_BODY, completed),
                    stack.procs["rapport"][0].pid,
                ),
                Target(
                    "floor",
                    endpoint(floor_port, "/v1/responses", secret, RESPONSES_BODY, completed),
                    stack.procs["floor"][0].pid,
                ),
            ]
            for name, port in variants:
                wait_ready(stack, f"http://127.0.0.1:{port}/health")
                rapport_endpoint = endpoint(
                    port, "/v1/responses", secret, RESPONSES_BODY, completed
                )
                targets.append(Target(name, rapport_endpoint, stack.procs[name][0].pid))
            if args.other_command:
                targets.append(spawn_other(args, stack, env, tmp, upstream_url))
            direct_auth = "x" * len(secret)
            direct = endpoint(
                upstream_port, "/v1/chat/completions", direct_auth, CHAT_BODY, b'"finish_reason"'
            )
            libpq_url = url.replace("+asyncpg", "", 1)
            return run_bounded(measure(args, targets, direct, libpq_url), args.max_seconds)
    finally:
        stack.close()


def spawn_variant(
    spec: str, stack: Stack, rapport: str, env: dict[str, str], tmp: Path, source: Path
) -> tuple[str, int]:
    """Another `rapport serve` on the same database, its environment changed by `spec`
    (`NAME:VAR=VALUE,VAR=VALUE`): two settings of Rapport compared in the same rounds."""
    name, _, assignments = spec.partition(":")
    changed = dict(pair.split("=", 1) for pair in assignments.split(",") if pair)
    port = free_port()
    stack.spawn(name, [rapport, "serve", "--port", str(port)], env | changed, tmp, source)
    return name, port


def spawn_revision(
    spec: str, stack: Stack, rapport: str, env: dict[str, str], tmp: Path
) -> tuple[str, int]:
    """Another `rapport serve` on the same database, running the tree of a git revision
    (`NAME:REV`): a change measured against the code before it in the same rounds, which on
    a machine shared with other work is steadier than two runs one after the other. The
    revision must take the database as the work tree migrated it."""
    name, _, rev = spec.partition(":")
    source = export_tree(rev, tmp / f"source-{name}")
    port = free_port()
    serve = [rapport, "serve", "--port", str(port)]
    stack.spawn(name, serve, env | {"PYTHONPATH": str(source)}, tmp, source)
    return name, port


def spawn_other(
    args: argparse.Namespace, stack: Stack, env: dict[str, str], tmp: Path, upstream_url: str
) -> Target:
    port = free_port()
    command = args.other_command.format(port=port, upstream=upstream_url)
    other_env = env | {"BENCH_UPSTREAM_URL": upstream_url, "BENCH_PORT": str(port)}
    stack.spawn(args.other_name, shlex.split(command), other_env, tmp, tmp)
    wait_ready(stack, f"http://127.0.0.1:{port}{args.other_health}", within=120)
    chat = args.other_path.endswith("/chat/completions")
    body, expect = (CHAT_BODY, b'"finish_reason"') if chat else (RESPONSES_BODY, b'"completed"')
    secret = args.other_key
    return Target(
        args.other_name,
        endpoint(port, args.other_path, secret, body, expect),
        stack.procs[args.other_name][0].pid,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--pairs", type=int, default=300, help="latency pairs per round (300)")
    parser.add_argument("--requests", type=int, default=2000, help="throughput requests (2000)")
    parser.add_argument("--clients", type=int, default=20, help="throughput clients (20)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed pairs per target (200)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="another Rapport column, NAME:VAR=VALUE[,VAR=VALUE] (repeatable)",
    )
    parser.add_argument(
        "--revision",
        action="append",
        default=[],
        help="another Rapport column running a git revision's tree, NAME:REV (repeatable)",
    )
    parser.add_argument(
        "--other-command",
        default=None,
        help="a second gateway's command line; {port} and {upstream} are filled in",
    )
    parser.add_argument("--other-name", default="other", help="its column's name")
    parser.add_argument(
        "--other-path", default="/v1/chat/completions", help="the path it is asked on"
    )
    parser.add_argument("--other-health", default="/health/liveliness", help="its readiness path")
    parser.add_argument("--other-key", default="sk-bench-other", help="the bearer key it takes")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw")
    common_arguments(parser, max_seconds=1200.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(bench_main(parse_args(None), run, report)[0])
