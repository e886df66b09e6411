"""Latency Rapport adds to a stored, non-streaming POST /v1/responses over the upstream alone."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx
import msgspec
from shared import (
    DEFAULT_ADMIN_URL,
    ROOT,
    bench_main,
    create_database,
    drop_database,
    export_tree,
    machine,
    percentile,
    run_sql,
)

PROMPT = "Say hello to the benchmark in exactly five words."
MODEL = "test-model"
REQUEST_TIMEOUT_S = 10.0
START_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------------------------
# Statistics and reporting


@dataclass
class Summary:
    median: float
    p90: float
    p99: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Summary:
        ordered = sorted(samples_ms)
        return cls(percentile(ordered, 50), percentile(ordered, 90), percentile(ordered, 99))

    def minus(self, other: Summary) -> Summary:
        return Summary(self.median - other.median, self.p90 - other.p90, self.p99 - other.p99)


# --------------------------------------------------------------------------------------------
# HTTP clients: the direct and gateway paths always go through the same client code


class Client(Protocol):
    async def post(self, body: bytes) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    expect: bytes  # a fragment every good answer contains

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on one asyncio stream: the least client overhead
    Python allows, so the client's own cost (the same on both paths) stays small and steady."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        lines = [
            f"POST {endpoint.path} HTTP/1.1",
            f"Host: {endpoint.host}:{endpoint.port}",
            "Content-Type: application/json",
            "Accept: application/json",
            *(f"{name}: {value}" for name, value in endpoint.headers),
        ]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self._endpoint.host, self._endpoint.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader, self._writer = reader, writer
        return reader, writer

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self._reader is None or self._writer is None:
            reader, writer = await self._connect()
        else:
            reader, writer = self._reader, self._writer
        writer.write(b"%s%d\r\n\r\n%s" % (self._head, len(body), body))
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = -1
        chunked = close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            payload = await self._read_chunked(reader)
        elif length >= 0:
            payload = await reader.readexactly(length)
        else:
            payload, close = await reader.read(), True
        if close:
            await self.close()
        return status, payload

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class HttpxClient:
    """httpx.AsyncClient with HTTP/1.1 keep-alive: slower, but the client everybody knows."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._url = endpoint.url
        headers = {"content-type": "application/json", **dict(endpoint.headers)}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=REQUEST_TIMEOUT_S,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    async def post(self, body: bytes) -> tuple[int, bytes]:
        answer = await self._client.post(self._url, content=body)
        return answer.status_code, answer.content

    async def close(self) -> None:
        await self._client.aclose()


CLIENTS: dict[str, Callable[[Endpoint], Client]] = {"raw": RawClient, "httpx": HttpxClient}


# --------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Samples:
    direct: list[float] = field(default_factory=list)
    gateway: list[float] = field(default_factory=list)
    paired: list[float] = field(default_factory=list)  # gateway - direct within one pair


class BadAnswer(Exception):
    """A request failed; the benchmark stops rather than time errors."""


async def timed(client: Client, endpoint: Endpoint) -> float:
    """One request's wall time in ms, from the first byte written to the last byte read."""
    started = time.perf_counter_ns()
    async with asyncio.timeout(REQUEST_TIMEOUT_S):
        status, payload = await client.post(endpoint.body)
    elapsed = (time.perf_counter_ns() - started) / 1e6
    if status != 200 or endpoint.expect not in payload:
        raise BadAnswer(f"{endpoint.url} answered {status}: {payload[:300]!r}")
    return elapsed


async def interleaved(
    make: Callable[[Endpoint], Client],
    direct: Endpoint,
    gateway: Endpoint,
    pairs: int,
    concurrency: int,
    samples: Samples | None,
) -> None:
    """`pairs` direct+gateway pairs shared among `concurrency` workers. Each worker alternates
    the two paths and swaps which goes first every pair, so drift and order effects (a cold
    socket, a GC pause, a checkpoint) land on both sides equally."""
    remaining = iter(range(pairs))

    async def worker(index: int) -> None:
        clients = (make(direct), make(gateway))
        try:
            for number in remaining:
                gateway_first = (number + index) % 2 == 1
                order = (
                    ((1, gateway), (0, direct)) if gateway_first else ((0, direct), (1, gateway))
                )
                got = [0.0, 0.0]
                for side, endpoint in order:
                    got[side] = await timed(clients[side], endpoint)
                if samples is not None:
                    samples.direct.append(got[0])
                    samples.gateway.append(got[1])
                    samples.paired.append(got[1] - got[0])
        finally:
            for client in clients:
                await client.close()

    async with asyncio.TaskGroup() as group:
        for index in range(concurrency):
            group.create_task(worker(index))


async def throughput(
    make: Callable[[Endpoint], Client], endpoint: Endpoint, requests: int, concurrency: int
) -> float:
    """Requests per second of one path alone, `concurrency` closed-loop workers."""
    remaining = iter(range(requests))

    async def worker() -> None:
        client = make(endpoint)
        try:
            for _ in remaining:
                await timed(client, endpoint)
        finally:
            await client.close()

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return requests / (time.perf_counter() - started)


@dataclass
class Measurement:
    samples: Samples
    gateway_rps: float
    direct_rps: float
    gateway_cpu_ms: float | None  # gateway process CPU time per gateway request, timed phase
    analyzed: bool
    machine: str  # CPUs, Python, load average as the timed phase began


@dataclass
class Target:
    direct: Endpoint
    gateway: Endpoint
    gateway_pid: int
    libpq_url: str | None  # the bench database, to ANALYZE after warm-up (Postgres only)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(args: argparse.Namespace, target: Target) -> Measurement:
    make = CLIENTS[args.client]
    direct, gateway = target.direct, target.gateway
    await interleaved(make, direct, gateway, args.warmup, args.concurrency, None)
    analyzed = target.libpq_url is not None and not args.no_analyze
    if analyzed and target.libpq_url:
        # What autovacuum does on a running server; a brand-new table has no statistics yet.
        await asyncio.to_thread(run_sql, target.libpq_url, "ANALYZE")
    samples = Samples()
    context = machine()
    cpu_before = process_cpu_seconds(target.gateway_pid)
    await interleaved(make, direct, gateway, args.requests, args.concurrency, samples)
    cpu_after = process_cpu_seconds(target.gateway_pid)
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None:
        cpu_ms = (cpu_after - cpu_before) * 1000 / args.requests
    rate_requests = args.throughput_requests or args.requests
    direct_rps = await throughput(make, direct, rate_requests, args.concurrency)
    gateway_rps = await throughput(make, gateway, rate_requests, args.concurrency)
    return Measurement(samples, gateway_rps, direct_rps, cpu_ms, analyzed, context)


def report(args: argparse.Namespace, result: Measurement, commit: str) -> str:
    direct = Summary.of(result.samples.direct)
    gateway = Summary.of(result.samples.gateway)
    added = gateway.minus(direct)
    paired = Summary.of(result.samples.paired)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    tenth = max(1, len(result.samples.gateway) // 10)
    early = Summary.of(result.samples.gateway[:tenth]).median
    late = Summary.of(result.samples.gateway[-tenth:]).median
    stats = "ANALYZE after warm-up" if result.analyzed else "no ANALYZE"
    cpu = (
        f"{result.gateway_cpu_ms:.2f} ms" if result.gateway_cpu_ms is not None else "n/a (no /proc)"
    )
    rows = [
        ("direct upstream `POST /v1/chat/completions`", direct),
        ("gateway `POST /v1/responses` (stored)", gateway),
        ("**added by Rapport** (gateway - direct)", added),
    ]
    lines = [
        f"## latency · {args.database} · concurrency {args.concurrency} · {when} · commit {commit}",
        "",
        (
            f"{len(result.samples.gateway)} interleaved pairs after {args.warmup} warm-up pairs; "
            f"client `{args.client}`; upstream delay {args.delay_ms} ms; {stats}; "
            f"{result.machine}."
        ),
        "",
        "| path | median ms | p90 ms | p99 ms |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {s.median:.2f} | {s.p90:.2f} | {s.p99:.2f} |" for name, s in rows),
        "",
        (
            f"Paired difference (gateway - direct, same pair): median {paired.median:.2f} ms, "
            f"p90 {paired.p90:.2f} ms, p99 {paired.p99:.2f} ms. Gateway median in the first "
            f"tenth of the run {early:.2f} ms, last tenth {late:.2f} ms. Gateway process CPU "
            f"per request: {cpu}. Gateway p99 / median: **{gateway.p99 / gateway.median:.1f}x** "
            "(SQLite at 20 clients: target ≤ 5x)."
        ),
        (
            f"Throughput at concurrency {args.concurrency} (each path alone, "
            f"{args.throughput_requests or args.requests} requests): gateway "
            f"**{result.gateway_rps:.0f} req/s**, direct {result.direct_rps:.0f} req/s."
        ),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Setup and teardown: database, key, upstream and gateway processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this script dies without cleaning up (say, SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Stack:
    """Everything the run creates, torn down in reverse order whatever happens."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], None]]] = []
        self.procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def push(self, what: str, undo: Callable[[], None]) -> None:
        self._undo.append((what, undo))

    def close(self) -> None:
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:  # noqa: BLE001  (keep undoing the rest)
                print(f"bench: cleanup of {what} failed: {exc!r}", file=sys.stderr)

    def spawn(self, name: str, argv: list[str], env: dict[str, str], logs: Path, cwd: Path) -> None:
        log_path = logs / f"{name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop it in order
                # no threads exist yet when the servers are spawned, so preexec_fn is safe
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )
        self.procs[name] = (proc, log_path)
        self.push(name, lambda: stop_process(proc))

    def check_alive(self) -> None:
        for name, (proc, log_path) in self.procs.items():
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def wait_ready(
    stack: Stack, url: str, headers: dict[str, str] | None = None, within: float = START_TIMEOUT_S
) -> None:
    deadline = time.monotonic() + within
    with httpx.Client(timeout=2.0) as client:
        while True:
            stack.check_alive()
            try:
                if client.get(url, headers=headers).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {within:g} s")
            time.sleep(0.1)


def rapport_executable() -> str:
    beside = Path(sys.executable).parent / "rapport"
    found = str(beside) if beside.exists() else shutil.which("rapport")
    if not found:
        raise RuntimeError("the `rapport` console script is not installed (pip install -e .)")
    return found


def run_cli(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextlib.contextmanager
def database(args: argparse.Namespace, stack: Stack, tmp: Path) -> Iterator[str]:
    """The RAPPORT_DATABASE_URL of a throwaway database, dropped afterwards."""
    if args.database == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'rapport.db'}"
        return
    name, url = create_database(args.admin_url)
    stack.push(f"database {name}", lambda: drop_database(args.admin_url, name))
    yield url


def endpoints(upstream_port: int, gateway_port: int, secret: str) -> tuple[Endpoint, Endpoint]:
    """The same small question both ways, each with a bearer header of the same shape."""
    messages = [{"role": "user", "content": PROMPT}]
    direct = Endpoint(
        "127.0.0.1",
        upstream_port,
        "/v1/chat/completions",
        (("Authorization", "Bearer " + "x" * len(secret)),),
        msgspec.json.encode({"model": MODEL, "messages": messages}),
        b'"finish_reason":"stop"',
    )
    gateway = Endpoint(
        "127.0.0.1",
        gateway_port,
        "/v1/responses",
        (("Authorization", f"Bearer {secret}"),),
        msgspec.json.encode({"model": MODEL, "input": PROMPT}),
        b'"status":"completed"',
    )
    return direct, gateway


def rapport_env(database_url: str, upstream_url: str) -> dict[str, str]:
    """This process's environment without its RAPPORT_* settings, plus the bench's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    return env | {
        "RAPPORT_DATABASE_URL": database_url,
        "RAPPORT_UPSTREAM_BASE_URL": upstream_url,
        "RAPPORT_UPSTREAM_API_KEY": "sk-upstream-bench",
        "RAPPORT_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def prepare_rapport(rev: str | None, env: dict[str, str], tmp: Path) -> tuple[Path, str, str]:
    """The source tree to run (`rev` exported, else this one), the `rapport` command, and the
    secret of a new key in a migrated database. Sets PYTHONPATH in `env` for a revision."""
    source = ROOT
    if rev:
        # The console script imports `app` from PYTHONPATH before the editable install.
        source = export_tree(rev, tmp / "source")
        env["PYTHONPATH"] = str(source)
    rapport = rapport_executable()
    run_cli([rapport, "db", "upgrade"], env, source)
    keys = run_cli([rapport, "keys", "create", "--name", "bench"], env, source)
    return source, rapport, keys.splitlines()[-1]


@dataclass
class Served:
    """`rapport serve` and the test upstream, running; what a run needs to talk to them."""

    stack: Stack
    url: str
    upstream_port: int
    gateway_port: int
    secret: str


@contextlib.contextmanager
def serving(args: argparse.Namespace, delay_ms: int = 0) -> Iterator[Served]:
    """A throwaway database (`args.database`, `args.admin_url`), a gateway key, the test
    upstream and `rapport serve` (of `args.rev` when set), all torn down afterwards."""
    stack = Stack()
    try:
        tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
        stack.push("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
        with database(args, stack, tmp) as url:
            upstream_port, gateway_port = free_port(), free_port()
            env = rapport_env(url, f"http://127.0.0.1:{upstream_port}/v1")
            source, rapport, secret = prepare_rapport(args.rev, env, tmp)
            upstream_argv = [sys.executable, str(source / "tests" / "upstream.py")]
            upstream_argv += ["--port", str(upstream_port), "--delay-ms", str(delay_ms)]
            stack.spawn("upstream", upstream_argv, env, tmp, source)
            serve = [rapport, "serve", "--port", str(gateway_port)]
            stack.spawn("rapport", serve, env, tmp, source)
            wait_ready(stack, f"http://127.0.0.1:{upstream_port}/v1/models")
            wait_ready(stack, f"http://127.0.0.1:{gateway_port}/health")
            yield Served(stack, url, upstream_port, gateway_port, secret)
    finally:
        stack.close()


def run(args: argparse.Namespace) -> Measurement:
    with serving(args, args.delay_ms) as served:
        stack, url = served.stack, served.url
        direct, gateway = endpoints(served.upstream_port, served.gateway_port, served.secret)
        libpq_url = url.replace("+asyncpg", "", 1) if args.database == "postgres" else None
        target = Target(direct, gateway, stack.procs["rapport"][0].pid, libpq_url)
        try:
            return run_loop(measure(args, target), args.max_seconds)
        except Exception as exc:
            try:
                stack.check_alive()
            except RuntimeError as crashed:
                raise crashed from exc  # a crashed server explains the failure best
            raise


def run_loop(main: Awaitable[Measurement], limit: float) -> Measurement:
    async def bounded() -> Measurement:
        async with asyncio.timeout(limit):
            return await main

    try:
        import uvloop
    except ImportError:
        return asyncio.run(bounded())
    return uvloop.run(bounded())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="timed pairs (default 2000)")
    parser.add_argument("--concurrency", type=int, default=1, help="client workers (default 1)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed pairs first (200)")
    parser.add_argument(
        "--throughput-requests",
        type=int,
        default=0,
        help="requests per path in the req/s phase (default: --requests)",
    )
    parser.add_argument(
        "--rev",
        default=None,
        help="benchmark this git revision (exported to a temp dir) instead of the work tree",
    )
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="libpq URL to CREATE DB")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw")
    parser.add_argument("--delay-ms", type=int, default=0, help="upstream's fixed delay")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="abort after this")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip the ANALYZE after warm-up (measure a table without planner statistics)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    code, _result = bench_main(parse_args(argv), run, report)
    return code


if __name__ == "__main__":
    sys.exit(main())
