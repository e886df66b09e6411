"""Streaming through Rapport: time it adds to the first delta, and the events/s one stream keeps."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from latency import (
    MODEL,
    PROMPT,
    Stack,
    Summary,
    free_port,
    rapport_executable,
    run_cli,
    wait_ready,
)
from shared import (
    DEFAULT_ADMIN_URL,
    bench_main,
    cpu_seconds,
    create_database,
    drop_database,
    export_tree,
    machine,
    percentile,
    run_bounded,
    run_sql,
)

STREAM_TIMEOUT_S = 60.0
READ_SIZE = 1 << 18
# The upstream's content chunks (its role chunk carries `"delta":{"role":…`), and Rapport's.
DIRECT_DELTA = b'"delta":{"content":"'
GATEWAY_DELTA = b"event: response.output_text.delta\n"
GATEWAY_CREATED = b"event: response.created\n"
DIRECT, STORED, UNSTORED = "direct", "gateway", "gateway, store: false"


# --------------------------------------------------------------------------------------------
# One raw client for both paths: it reads the stream as it comes and stamps its frames


@dataclass(frozen=True)
class StreamPath:
    """One way to ask for a stream, and how to read its Server-Sent Events frames."""

    name: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    delta: bytes  # a frame carrying a piece of the answer's text contains this
    end: bytes  # the frame ending a good stream contains this
    marks: tuple[bytes, ...] = ()  # also stamp the first frame containing each of these


@dataclass
class StreamTiming:
    """Milliseconds from the request's first byte written to each moment of one stream."""

    first_delta: float
    last_delta: float
    total: float  # the last byte of the answer
    deltas: int
    marks: dict[bytes, float] = field(default_factory=dict)
    gateway_cpu: float | None = None  # ms of the gateway's CPU while this stream ran
    upstream_cpu: float | None = None  # ms of the upstream's CPU while this stream ran


class BadAnswer(Exception):
    """A stream failed or looked wrong; the benchmark stops rather than time errors."""


class StreamClient:
    """HTTP/1.1 keep-alive on one asyncio stream, reading a chunked SSE answer as it arrives.

    Reads are large, so a burst of frames that is already in the socket buffer costs one
    syscall; every frame in one read gets that read's time stamp.
    """

    def __init__(self, target: StreamPath) -> None:
        self._target = target
        lines = [
            f"POST {target.path} HTTP/1.1",
            f"Host: 127.0.0.1:{target.port}",
            "Content-Type: application/json",
            "Accept: text/event-stream",
            *(f"{name}: {value}" for name, value in target.headers),
            f"Content-Length: {len(target.body)}",
        ]
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode() + target.body
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def stream(self) -> StreamTiming:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                "127.0.0.1", self._target.port
            )
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader, writer = self._reader, self._writer
        started = time.perf_counter_ns()
        writer.write(self._request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if status != 200 or headers.get(b"transfer-encoding") != b"chunked":
            length = int(headers.get(b"content-length", b"0"))
            payload = await reader.readexactly(length) if length else b""
            await self.close()
            raise BadAnswer(f"{self._target.name} answered {status}: {payload[:300]!r}")
        timing = await self._read_chunked(reader, started)
        if headers.get(b"connection") == b"close":
            await self.close()
        return timing

    async def _read_chunked(self, reader: asyncio.StreamReader, started: int) -> StreamTiming:
        target = self._target
        raw = b""  # received, not yet de-chunked
        text = b""  # de-chunked, not yet a whole frame
        deltas, first, last, ended, done = 0, 0, 0, False, False
        marks: dict[bytes, int] = {}
        while not done:
            data = await reader.read(READ_SIZE)
            now = time.perf_counter_ns()
            if not data:
                raise BadAnswer(f"{target.name}: the connection closed mid-stream")
            raw += data
            pos, pieces = 0, [text]
            while True:  # chunked transfer coding: `<hex size>\r\n<data>\r\n`, size 0 last
                line_end = raw.find(b"\r\n", pos)
                if line_end < 0:
                    break
                size = int(raw[pos:line_end].split(b";")[0], 16)
                if size == 0:
                    if len(raw) < line_end + 4:
                        break
                    pos, done = line_end + 4, True
                    break
                if len(raw) < line_end + 2 + size + 2:
                    break
                pieces.append(raw[line_end + 2 : line_end + 2 + size])
                pos = line_end + 2 + size + 2
            raw = raw[pos:]
            frames = b"".join(pieces).split(b"\n\n")
            text = frames.pop()
            for frame in frames:
                if target.delta in frame:
                    deltas += 1
                    first = first or now
                    last = now
                elif target.end in frame:
                    ended = True
                for mark in target.marks:
                    if mark not in marks and mark in frame:
                        marks[mark] = now
        if raw or text.strip() or not ended or not deltas:
            raise BadAnswer(f"{target.name}: the stream did not end well: {text[-300:]!r}")

        def ms(stamp: int) -> float:
            return (stamp - started) / 1e6

        return StreamTiming(
            ms(first), ms(last), ms(now), deltas, {mark: ms(at) for mark, at in marks.items()}
        )

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def one(client: StreamClient) -> StreamTiming:
    async with asyncio.timeout(STREAM_TIMEOUT_S):
        return await client.stream()


# --------------------------------------------------------------------------------------------
# Measurement

Rounds = dict[str, list[StreamTiming]]  # path name → one timing per round


@dataclass
class Pids:
    gateway: int
    upstream: int


def cpu_ms(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else (after - before) * 1000


async def interleaved(paths: Sequence[StreamPath], rounds: int, pids: Pids) -> Rounds:
    """Concurrency 1, the paths in turn; which goes first rotates every round, so drift on the
    machine lands on every path alike. Each stream is charged the gateway's and the upstream's
    CPU time while it ran (read outside the timed interval; nothing else runs meanwhile)."""
    clients = [StreamClient(path) for path in paths]
    got: Rounds = {path.name: [] for path in paths}
    try:
        for number in range(rounds):
            for index in range(len(paths)):
                turn = (number + index) % len(paths)
                gateway, upstream = cpu_seconds(pids.gateway), cpu_seconds(pids.upstream)
                timing = await one(clients[turn])
                timing.gateway_cpu = cpu_ms(gateway, cpu_seconds(pids.gateway))
                timing.upstream_cpu = cpu_ms(upstream, cpu_seconds(pids.upstream))
                got[paths[turn].name].append(timing)
    finally:
        for client in clients:
            await client.close()
    return got


@dataclass
class Measurement:
    first: Rounds  # part (a): a short answer
    long: Rounds  # part (b): a long answer
    analyzed: bool
    machine_first: str
    machine_long: str


@dataclass
class Target:
    short: tuple[StreamPath, ...]  # direct, gateway (stored), gateway (store: false)
    long: tuple[StreamPath, ...]  # direct, gateway (stored)
    pids: Pids
    libpq_url: str


async def measure(args: argparse.Namespace, target: Target) -> Measurement:
    await interleaved(target.short, args.warmup, target.pids)
    analyzed = not args.no_analyze
    if analyzed:  # steady state, as bench/latency.py: a running server's tables have statistics
        await asyncio.to_thread(run_sql, target.libpq_url, "ANALYZE")
    context_first = machine()
    first = await interleaved(target.short, args.requests, target.pids)
    await interleaved(target.long, args.long_warmup, target.pids)
    context_long = machine()
    long = await interleaved(target.long, args.long_repetitions, target.pids)
    expected = {t.deltas for timings in long.values() for t in timings}
    if len(expected) != 1:
        raise BadAnswer(f"the long streams differ in their number of deltas: {sorted(expected)}")
    return Measurement(first, long, analyzed, context_first, context_long)


# --------------------------------------------------------------------------------------------
# Report


def median(values: Sequence[float | None]) -> float | None:
    known = sorted(v for v in values if v is not None)
    return percentile(known, 50) if known else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def rate(t: StreamTiming) -> float:
    span = (t.last_delta - t.first_delta) / 1000
    return (t.deltas - 1) / span if span > 0 else float("inf")


def report(args: argparse.Namespace, result: Measurement, commit: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    first = result.first
    direct = Summary.of([t.first_delta for t in first[DIRECT]])
    stored = Summary.of([t.first_delta for t in first[STORED]])
    unstored = Summary.of([t.first_delta for t in first[UNSTORED]])
    created = Summary.of([t.marks[GATEWAY_CREATED] for t in first[STORED]])
    created_unstored = Summary.of([t.marks[GATEWAY_CREATED] for t in first[UNSTORED]])
    paired = Summary.of(
        [g.first_delta - d.first_delta for d, g in zip(first[DIRECT], first[STORED], strict=True)]
    )
    stats = "ANALYZE after warm-up" if result.analyzed else "no ANALYZE"
    rows_a = [
        ("direct upstream: first content chunk", direct, None),
        ("Rapport, stored: first `response.output_text.delta`", stored, first[STORED]),
        ("**added by Rapport, stored** (gateway - direct)", stored.minus(direct), None),
        ("Rapport, stored: `response.created`", created, None),
        ("Rapport, `store: false`: first `response.output_text.delta`", unstored, first[UNSTORED]),
        ("added by Rapport, `store: false`", unstored.minus(direct), None),
        ("Rapport, `store: false`: `response.created`", created_unstored, None),
    ]
    long = result.long
    deltas = long[DIRECT][0].deltas
    rows_b = []
    for name, samples in (
        ("direct upstream (`chat.completion.chunk` with content)", long[DIRECT]),
        ("Rapport, stored (`response.output_text.delta`)", long[STORED]),
    ):
        total = median([t.total for t in samples]) or float("nan")
        rows_b.append(
            f"| {name} | {deltas} | {fmt(median([rate(t) for t in samples]), 0)} | "
            f"{deltas / total * 1000:,.0f} | "
            f"{fmt(median([t.first_delta for t in samples]), 1)} | "
            f"{fmt(median([t.last_delta - t.first_delta for t in samples]), 1)} | "
            f"{total:.1f} | {max(t.total for t in samples):.1f} | "
            f"{fmt(median([t.gateway_cpu for t in samples]), 1)} | "
            f"{fmt(median([t.upstream_cpu for t in samples]), 1)} |"
        )
    gateway_cpu = median([t.gateway_cpu for t in long[STORED]])
    short_cpu = median([t.gateway_cpu for t in long[DIRECT]])
    per_event = (
        (gateway_cpu - (median([t.gateway_cpu for t in first[STORED]]) or 0.0)) * 1000 / deltas
        if gateway_cpu is not None
        else None
    )
    lines = [
        f"## stream · postgres · {when} · commit {commit}",
        "",
        "### (a) time to the first event (concurrency 1, a short answer)",
        "",
        (
            f"{args.requests} interleaved rounds (direct, stored, `store: false`; the first "
            f"rotates) after {args.warmup} warm-up rounds; direct `POST /v1/chat/completions` "
            "(`stream: true`, `include_usage`) vs `POST /v1/responses` (`stream: true`); times "
            f"from the request's first byte written; upstream delay 0 ms; {stats}; "
            f"{result.machine_first}."
        ),
        "",
        "| to the first … | median ms | p90 ms | p99 ms | gateway CPU per request ms |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {s.median:.2f} | {s.p90:.2f} | {s.p99:.2f} | "
            f"{fmt(median([t.gateway_cpu for t in cpu])) if cpu else ''} |"
            for name, s, cpu in rows_a
        ),
        "",
        (
            f"Paired difference of the first delta (stored - direct, same round): median "
            f"{paired.median:.2f} ms, p90 {paired.p90:.2f} ms, p99 {paired.p99:.2f} ms. "
            f"`response.created` → first delta: median {stored.median - created.median:.2f} ms "
            f"stored, {unstored.median - created_unstored.median:.2f} ms `store: false` "
            f"(the upstream alone: {direct.median:.2f} ms to its first content chunk)."
        ),
        "",
        "### (b) events per second on one connection (a long answer)",
        "",
        (
            f"{args.long_repetitions} interleaved rounds after {args.long_warmup} warm-up rounds; "
            f"input of {args.words} words, echoed back one word per chunk; upstream delay 0 ms; "
            f"medians; {result.machine_long}."
        ),
        "",
        (
            "| path | deltas | deltas/s first→last delta | deltas/s over the whole request | "
            "to first delta ms | first→last delta ms | total ms | total ms (max) | "
            "gateway CPU ms | upstream CPU ms |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows_b,
        "",
        (
            f"Gateway CPU per delta event, beyond a short stored stream: {fmt(per_event, 1)} µs "
            f"(gateway CPU during a direct stream, i.e. idle: {fmt(short_cpu)} ms)."
        ),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Setup and teardown


def paths(
    upstream_port: int, gateway_port: int, secret: str, words: int
) -> tuple[tuple[StreamPath, ...], tuple[StreamPath, ...]]:
    """Short (direct, stored, `store: false`) and long (direct, stored), with bearer headers
    of the same length."""
    text = " ".join(f"word{i % 1000}" for i in range(words))
    made = []
    for prompt in (PROMPT, text):
        chat = {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
            "stream_options": {"include_usage": True},  # as Rapport asks its upstream
        }
        direct = StreamPath(
            DIRECT,
            upstream_port,
            "/v1/chat/completions",
            (("Authorization", "Bearer " + "x" * len(secret)),),
            msgspec.json.encode(chat),
            DIRECT_DELTA,
            b"data: [DONE]",
        )
        gateways = [
            StreamPath(
                name,
                gateway_port,
                "/v1/responses",
                (("Authorization", f"Bearer {secret}"),),
                msgspec.json.encode({"model": MODEL, "input": prompt, "stream": True, **extra}),
                GATEWAY_DELTA,
                b"event: response.completed\n",
                (GATEWAY_CREATED,),
            )
            for name, extra in ((STORED, {}), (UNSTORED, {"store": False}))
        ]
        made.append((direct, *gateways))
    return made[0], made[1][:2]


def run(args: argparse.Namespace) -> Measurement:
    stack = Stack()
    try:
        tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
        stack.push("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
        name, url = create_database(args.admin_url)
        stack.push(f"database {name}", lambda: drop_database(args.admin_url, name))
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        upstream_port, gateway_port = free_port(), free_port()
        env |= {
            "RAPPORT_DATABASE_URL": url,
            "RAPPORT_UPSTREAM_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
            "RAPPORT_UPSTREAM_API_KEY": "sk-upstream-bench",
            "RAPPORT_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        source = Path(__file__).resolve().parent.parent
        if args.rev:
            source = export_tree(args.rev, tmp / "source")
            env["PYTHONPATH"] = str(source)
        rapport = rapport_executable()
        run_cli([rapport, "db", "upgrade"], env, source)
        keys = run_cli([rapport, "keys", "create", "--name", "bench"], env, source)
        secret = keys.splitlines()[-1]
        upstream = [sys.executable, str(source / "tests" / "upstream.py")]
        stack.spawn("upstream", [*upstream, "--port", str(upstream_port)], env, tmp, source)
        stack.spawn("rapport", [rapport, "serve", "--port", str(gateway_port)], env, tmp, source)
        wait_ready(stack, f"http://127.0.0.1:{upstream_port}/v1/models")
        wait_ready(stack, f"http://127.0.0.1:{gateway_port}/health")
        short, long = paths(upstream_port, gateway_port, secret, args.words)
        pids = Pids(stack.procs["rapport"][0].pid, stack.procs["upstream"][0].pid)
        target = Target(short, long, pids, url.replace("+asyncpg", "", 1))
        try:
            return run_bounded(measure(args, target), args.max_seconds)
        except Exception as exc:
            try:
                stack.check_alive()
            except RuntimeError as crashed:
                raise crashed from exc  # a crashed server explains the failure best
            raise
    finally:
        stack.close()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="(a) timed rounds (300)")
    parser.add_argument("--warmup", type=int, default=50, help="(a) untimed rounds first (50)")
    parser.add_argument("--words", type=int, default=2000, help="(b) words of input (2000)")
    parser.add_argument("--long-repetitions", type=int, default=20, help="(b) timed rounds (20)")
    parser.add_argument("--long-warmup", type=int, default=3, help="(b) untimed rounds (3)")
    parser.add_argument(
        "--rev", default=None, help="benchmark this git revision (exported) instead of the tree"
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="libpq URL to CREATE DB")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="abort after this")
    parser.add_argument("--no-analyze", action="store_true", help="skip ANALYZE after warm-up")
    parser.add_argument("--no-record", action="store_true", help="do not append RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    code, _result = bench_main(parse_args(argv), run, report)
    return code


if __name__ == "__main__":
    sys.exit(main())
