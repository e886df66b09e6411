"""WebSocket mode: what it adds to the first delta next to SSE, and responses/s on one socket."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from latency import MODEL, PROMPT, Stack, Summary, free_port, rapport_executable, run_cli
from latency import wait_ready as wait_http
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
from stream import (
    GATEWAY_CREATED,
    BadAnswer,
    StreamClient,
    StreamTiming,
    cpu_ms,
    fmt,
    median,
    paths,
)
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

TURN_TIMEOUT_S = 60.0
READ_SIZE = 1 << 18
# The emitter writes `type` first, so a frame's kind shows in its first bytes.
WS_DELTA = b'{"type":"response.output_text.delta"'
WS_CREATED = b'{"type":"response.created"'
WS_TERMINAL = (b'{"type":"response.completed"', b'{"type":"response.incomplete"')
KEEPALIVE = (Opcode.PING, Opcode.PONG)
DIRECT, SSE, WS = "direct", "SSE", "WebSocket"
SSE_FREE, WS_FREE = "SSE, store: false", "WebSocket, store: false"


# --------------------------------------------------------------------------------------------
# One WebSocket on asyncio streams, framed by the websockets library's sans-I/O protocol


class SocketClient:
    """`/v1/responses` over one socket, read as `StreamClient` reads SSE: large reads, every
    frame of one read stamped with that read's time, counted from the create frame written.
    The websockets library does the framing (and permessage-deflate, when offered, as the
    OpenAI SDK's client offers it); this class only moves bytes, so its cost stays small."""

    def __init__(self, port: int, secret: str, deflate: bool) -> None:
        self._port, self._secret = port, secret
        self._extensions = enable_client_permessage_deflate(None) if deflate else None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._protocol: ClientProtocol | None = None

    async def open(self) -> float:
        """Connect and upgrade; returns the milliseconds from connecting to the 101."""
        started = time.perf_counter_ns()
        reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        uri = parse_uri(f"ws://127.0.0.1:{self._port}/v1/responses")
        protocol = ClientProtocol(uri, extensions=self._extensions, max_size=None)
        request = protocol.connect()
        request.headers["Authorization"] = f"Bearer {self._secret}"
        protocol.send_request(request)
        writer.write(b"".join(protocol.data_to_send()))
        self._reader, self._writer, self._protocol = reader, writer, protocol
        answers: list[Response] = []
        while not answers:
            protocol.receive_data(await self._read())
            answers = [e for e in protocol.events_received() if isinstance(e, Response)]
        [answer] = answers
        if answer.status_code != 101:
            raise BadAnswer(f"the upgrade answered {answer.status_code}: {answer.body!r}")
        return (time.perf_counter_ns() - started) / 1e6

    async def _read(self) -> bytes:
        assert self._reader is not None
        data = await self._reader.read(READ_SIZE)
        if not data:
            raise BadAnswer("the socket closed")
        return data

    async def turn(self, body: bytes, answers: bool = True) -> tuple[StreamTiming, bytes]:
        """One `response.create` and its events: the timing, and the terminal frame. A
        warm-up (`generate: false`) `answers` nothing: it has no deltas."""
        protocol, writer = self._protocol, self._writer
        assert protocol is not None
        assert writer is not None
        started = time.perf_counter_ns()
        protocol.send_text(body)
        writer.write(b"".join(protocol.data_to_send()))
        deltas, first, last, created = 0, 0, 0, 0
        while True:
            data = await self._read()
            now = time.perf_counter_ns()
            protocol.receive_data(data)
            if pending := protocol.data_to_send():  # pongs
                writer.write(b"".join(pending))
            for frame in protocol.events_received():
                if frame.opcode in KEEPALIVE:  # uvicorn pings every 20 s; the pong is sent
                    continue
                if frame.opcode is not Opcode.TEXT or not frame.fin:
                    raise BadAnswer(f"unexpected frame {frame.opcode.name}")
                text = frame.data
                if text.startswith(WS_DELTA):
                    deltas += 1
                    first = first or now
                    last = now
                elif text.startswith(WS_CREATED):
                    created = now
                elif text.startswith(WS_TERMINAL):
                    if answers and not deltas:
                        raise BadAnswer("a response without deltas")

                    def ms(stamp: int) -> float:
                        return (stamp - started) / 1e6

                    timing = StreamTiming(
                        ms(first), ms(last), ms(now), deltas, {GATEWAY_CREATED: ms(created)}
                    )
                    return timing, text
                elif not text.startswith(b'{"type":"response.'):
                    raise BadAnswer(f"the socket said {text[:300]!r}")

    async def timed(self, body: bytes, answers: bool = True) -> StreamTiming:
        return (await self.turn(body, answers))[0]

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def create_frame(**fields: Any) -> bytes:
    return msgspec.json.encode({"type": "response.create", "model": MODEL, **fields})


def response_id(terminal: bytes) -> str:
    return str(msgspec.json.decode(terminal)["response"]["id"])


# --------------------------------------------------------------------------------------------
# Measurement

One = Callable[[], Awaitable[StreamTiming]]
Rounds = dict[str, list[StreamTiming]]


@dataclass
class Pids:
    gateway: int


@dataclass
class Run:
    """Part (b): one path's sequential turns on one connection."""

    name: str
    turn_ms: list[float]
    seconds: float
    gateway_cpu_ms: float | None


@dataclass
class Measurement:
    first: Rounds
    handshakes: list[float]
    runs: list[Run]
    analyzed: bool
    machine_first: str
    machine_runs: str


async def interleaved(ones: dict[str, One], rounds: int, pids: Pids) -> Rounds:
    """Concurrency 1, the paths in turn, the first rotating every round (as stream.py)."""
    names = list(ones)
    got: Rounds = {name: [] for name in names}
    for number in range(rounds):
        for index in range(len(names)):
            name = names[(number + index) % len(names)]
            before = cpu_seconds(pids.gateway)
            async with asyncio.timeout(TURN_TIMEOUT_S):
                timing = await ones[name]()
            timing.gateway_cpu = cpu_ms(before, cpu_seconds(pids.gateway))
            got[name].append(timing)
    return got


async def sequential(name: str, turns: int, next_turn: One, pids: Pids) -> Run:
    """`turns` responses one after another on one connection, each sent once the last ended
    (after one untimed turn that opens the connection)."""
    await next_turn()
    before = cpu_seconds(pids.gateway)
    started = time.perf_counter()
    times = []
    for _ in range(turns):
        async with asyncio.timeout(TURN_TIMEOUT_S):
            times.append((await next_turn()).total)
    seconds = time.perf_counter() - started
    cpu = cpu_ms(before, cpu_seconds(pids.gateway))
    return Run(name, times, seconds, cpu / turns if cpu is not None else None)


class Chain:
    """A chain on one socket: every turn continues the last by `previous_response_id`."""

    def __init__(self, client: SocketClient, store: bool) -> None:
        self._client, self._store, self._last = client, store, ""

    async def __call__(self) -> StreamTiming:
        more = {"previous_response_id": self._last} if self._last else {}
        body = create_frame(input=PROMPT, store=self._store, **more)
        timing, terminal = await self._client.turn(body)
        self._last = response_id(terminal)
        return timing


async def measure(args: argparse.Namespace, target: Target) -> Measurement:
    deflate = not args.no_deflate
    direct, sse, sse_free = (StreamClient(path) for path in target.sse_paths)
    ws, ws_free = (SocketClient(target.port, target.secret, deflate) for _ in range(2))
    stored, unstored = create_frame(input=PROMPT), create_frame(input=PROMPT, store=False)
    try:
        await ws.open()
        await ws_free.open()
        ones: dict[str, One] = {
            DIRECT: direct.stream,
            SSE: sse.stream,
            WS: lambda: ws.timed(stored),
            SSE_FREE: sse_free.stream,
            WS_FREE: lambda: ws_free.timed(unstored),
        }
        await interleaved(ones, args.warmup, target.pids)
        analyzed = not args.no_analyze
        if analyzed:  # steady state, as the other benchmarks: a running server has statistics
            await asyncio.to_thread(run_sql, target.libpq_url, "ANALYZE")
        context_first = machine()
        first = await interleaved(ones, args.requests, target.pids)
    finally:
        for client in (direct, sse, sse_free, ws, ws_free):
            await client.close()
    handshakes = []
    for _ in range(args.handshakes):
        extra = SocketClient(target.port, target.secret, deflate)
        handshakes.append(await extra.open())
        await extra.close()
    context_runs = machine()
    runs = []
    # Each on a connection of its own, opened just before: an idle keep-alive connection is
    # closed by uvicorn after 5 s, an idle socket that answers no ping after 40 s.
    warm_up = create_frame(input=PROMPT, store=False, generate=False)
    for name, turns, body, chain in (
        ("WebSocket, stored", args.turns, stored, None),
        ("WebSocket, `store: false`", args.turns, unstored, None),
        ("WebSocket, `store: false` warm-ups (`generate: false`)", args.turns, warm_up, None),
        ("SSE (keep-alive), stored", args.turns, None, None),
        ("WebSocket, `store: false` chain (the connection's cache)", args.chain_turns, None, False),
        ("WebSocket, stored chain (read from the database)", args.chain_turns, None, True),
    ):
        if body is None and chain is None:
            http = StreamClient(target.sse_paths[1])
            try:
                runs.append(await sequential(name, turns, http.stream, target.pids))
            finally:
                await http.close()
            continue
        socket_ = SocketClient(target.port, target.secret, deflate)
        try:
            await socket_.open()
            next_turn: One = (
                Chain(socket_, store=chain)
                if chain is not None
                else functools.partial(socket_.timed, body or b"", body is not warm_up)
            )
            runs.append(await sequential(name, turns, next_turn, target.pids))
        finally:
            await socket_.close()
    return Measurement(first, handshakes, runs, analyzed, context_first, context_runs)


# --------------------------------------------------------------------------------------------
# Report


def report(args: argparse.Namespace, result: Measurement, commit: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    first = result.first
    delta = {name: Summary.of([t.first_delta for t in first[name]]) for name in first}
    created = {
        name: Summary.of([t.marks[GATEWAY_CREATED] for t in first[name]])
        for name in first
        if name != DIRECT
    }

    def paired(a: str, b: str) -> Summary:
        pairs = zip(first[a], first[b], strict=True)
        return Summary.of([x.first_delta - y.first_delta for x, y in pairs])

    def cpu(name: str) -> str:
        return fmt(median([t.gateway_cpu for t in first[name]]))

    rows_a = [("direct upstream: first content chunk", delta[DIRECT], "")]
    for name in (SSE, WS, SSE_FREE, WS_FREE):
        label = name.replace("store: false", "`store: false`")
        rows_a += [
            (f"{label}: first `response.output_text.delta`", delta[name], cpu(name)),
            (f"added by Rapport, {label} (- direct)", delta[name].minus(delta[DIRECT]), ""),
            (f"{label}: `response.created`", created[name], ""),
        ]
    ws_sse, ws_sse_free = paired(WS, SSE), paired(WS_FREE, SSE_FREE)
    shakes = Summary.of(result.handshakes)
    stats = "ANALYZE after warm-up" if result.analyzed else "no ANALYZE"
    deflate = "no compression" if args.no_deflate else "permessage-deflate, as the SDK offers it"
    rows_b = []
    for run in result.runs:
        ordered = sorted(run.turn_ms)
        tenth = max(1, len(run.turn_ms) // 10)
        rows_b.append(
            f"| {run.name} | {len(run.turn_ms)} | {len(run.turn_ms) / run.seconds:,.0f} | "
            f"{percentile(ordered, 50):.2f} | {percentile(ordered, 99):.2f} | "
            f"{median(run.turn_ms[:tenth]) or 0:.2f} | {median(run.turn_ms[-tenth:]) or 0:.2f} | "
            f"{fmt(run.gateway_cpu_ms)} |"
        )
    lines = [
        f"## websocket · postgres · {when} · commit {commit}",
        "",
        "### (a) time to the first delta, WebSocket vs SSE (concurrency 1, a short answer)",
        "",
        (
            f"{args.requests} interleaved rounds (direct, SSE, WebSocket, each stored and with "
            f"`store: false`; the first rotates) after {args.warmup} warm-up rounds; SSE is "
            "`POST /v1/responses` on a keep-alive connection, WebSocket a `response.create` "
            f"frame on an open socket ({deflate}); times from the request's first byte "
            f"written; upstream delay 0 ms; {stats}; {result.machine_first}."
        ),
        "",
        "| to the first … | median ms | p90 ms | p99 ms | gateway CPU per request ms |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {s.median:.2f} | {s.p90:.2f} | {s.p99:.2f} | {c} |"
            for name, s, c in rows_a
        ),
        "",
        (
            "Paired difference of the first delta, WebSocket - SSE (same round): stored median "
            f"{ws_sse.median:.2f} ms (p90 {ws_sse.p90:.2f}, p99 {ws_sse.p99:.2f}); `store: false` "
            f"median {ws_sse_free.median:.2f} ms (p90 {ws_sse_free.p90:.2f}, p99 "
            f"{ws_sse_free.p99:.2f}). Opening a socket (TCP connect, upgrade, key check) "
            f"once: median {shakes.median:.2f} ms, p99 {shakes.p99:.2f} ms over "
            f"{len(result.handshakes)} sockets."
        ),
        "",
        "### (b) responses per second on one connection",
        "",
        (
            f"Each path sends its turns one after another on one connection (the next create "
            f"once the terminal event is in); independent turns {args.turns}, chains "
            f"{args.chain_turns} turns (after one untimed turn each; the last continues {2 * args.chain_turns} items); "
            f"{deflate}; {result.machine_runs}."
        ),
        "",
        (
            "| path | turns | responses/s | turn median ms | turn p99 ms | first tenth median "
            "ms | last tenth median ms | gateway CPU per response ms |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows_b,
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Setup and teardown


@dataclass
class Target:
    sse_paths: tuple[Any, ...]  # direct, SSE stored, SSE store: false (stream.py's paths)
    port: int
    secret: str
    pids: Pids
    libpq_url: str


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
        # First on the path even without --rev: an editable install may name another checkout
        # (a shared venv across worktrees), and the `rapport` script would import that one.
        env["PYTHONPATH"] = str(source)
        rapport = rapport_executable()
        run_cli([rapport, "db", "upgrade"], env, source)
        secret = run_cli([rapport, "keys", "create", "--name", "bench"], env, source)
        secret = secret.splitlines()[-1]
        upstream = [sys.executable, str(source / "tests" / "upstream.py")]
        stack.spawn("upstream", [*upstream, "--port", str(upstream_port)], env, tmp, source)
        stack.spawn("rapport", [rapport, "serve", "--port", str(gateway_port)], env, tmp, source)
        wait_http(stack, f"http://127.0.0.1:{upstream_port}/v1/models")
        wait_http(stack, f"http://127.0.0.1:{gateway_port}/health")
        short, _long = paths(upstream_port, gateway_port, secret, 1)
        pids = Pids(stack.procs["rapport"][0].pid)
        target = Target(short, gateway_port, secret, pids, url.replace("+asyncpg", "", 1))
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
    parser.add_argument("--handshakes", type=int, default=50, help="sockets opened, timed (50)")
    parser.add_argument("--turns", type=int, default=500, help="(b) independent turns (500)")
    parser.add_argument("--chain-turns", type=int, default=200, help="(b) chain turns (200)")
    parser.add_argument("--no-deflate", action="store_true", help="offer no compression")
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
