"""Background mode on Redis: enqueue-to-start latency, and jobs/s through one `rapport worker`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import redis
import redis.asyncio as aioredis
from latency import (
    MODEL,
    PROMPT,
    REQUEST_TIMEOUT_S,
    Endpoint,
    RawClient,
    Stack,
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
    machine_cpu,
    percentile,
    pids_named,
    run_bounded,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"  # a db of its own: flushed before and after
TERMINAL = ["completed", "failed", "incomplete", "cancelled"]
IN_PROGRESS_ENTRY = "0-3"  # event log entry ids are 0-<sequence_number + 1>; in_progress is #2
POLL_S = 0.1  # cheap: one small count; completion times come from the rows, not the poll
# Redis commands the benchmark itself sends, left out of the per-job counts.
OWN_COMMANDS = {"xread", "scan", "info", "dbsize", "flushdb", "select", "client", "hello"}


class BadAnswer(Exception):
    """A request or a job failed; the benchmark stops rather than time errors."""


# --------------------------------------------------------------------------------------------
# CPU time per process, from /proc


class CpuMeter:
    """CPU seconds per role (API, worker, Postgres, …) between two snapshots."""

    def __init__(self, roles: dict[str, Callable[[], list[int]]]) -> None:
        self._roles = roles

    def snapshot(self) -> tuple[float, dict[str, dict[int, float]], tuple[float, float] | None]:
        taken: dict[str, dict[int, float]] = {}
        for role, pids in self._roles.items():
            per_pid = {pid: cpu_seconds(pid) for pid in pids()}
            taken[role] = {pid: cpu for pid, cpu in per_pid.items() if cpu is not None}
        return time.perf_counter(), taken, machine_cpu()

    @staticmethod
    def spent(
        before: tuple[float, dict[str, dict[int, float]], tuple[float, float] | None],
        after: tuple[float, dict[str, dict[int, float]], tuple[float, float] | None],
    ) -> Cpu:
        """A process that started in between counts from zero; one that ended is lost."""
        roles = {
            role: sum(cpu - before[1][role].get(pid, 0.0) for pid, cpu in now.items())
            for role, now in after[1].items()
        }
        busy = None
        if before[2] is not None and after[2] is not None:
            total = after[2][1] - before[2][1]
            busy = (after[2][0] - before[2][0]) / total if total > 0 else None
        return Cpu(after[0] - before[0], roles, busy)


@dataclass
class Cpu:
    wall: float  # seconds between the snapshots
    roles: dict[str, float]  # CPU seconds per role
    machine_busy: float | None  # fraction of all CPUs busy (whole machine)


def postgres_pids(database: str) -> tuple[Callable[[], list[int]], Callable[[], list[int]]]:
    """Backends serving the bench database (their title names it), and every other one."""

    def split() -> tuple[list[int], list[int]]:
        ours: list[int] = []
        others: list[int] = []
        for pid in pids_named("postgres"):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            (ours if f" {database} ".encode() in title else others).append(pid)
        return ours, others

    return (lambda: split()[0]), (lambda: split()[1])


# --------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Job:
    """One background create: when its POST was sent and answered, and the row afterwards."""

    sent_wall: float
    answered_wall: float
    answered_perf: float
    response_id: str
    seen_perf: float | None = None  # response.in_progress came back from XREAD
    created_at: float = 0.0
    claimed_at: float = 0.0
    completed_at: float = 0.0


@dataclass
class Phase:
    jobs: list[Job]
    started_wall: float  # the first POST
    resumed_wall: float | None  # drain: when the paused worker was let go
    cpu: Cpu
    requeued: int  # sweeper re-enqueues seen in Redis (keys `…@bucket`)
    commands: dict[str, int] = field(default_factory=dict)  # Redis calls during the phase


@dataclass
class Measurement:
    latency: Phase | None = None
    end_to_end: Phase | None = None
    drain: Phase | None = None
    attempts: dict[int, int] = field(default_factory=dict)
    machine: str = ""


@dataclass
class Target:
    gateway: Endpoint
    libpq_url: str
    redis_url: str
    worker_pids: list[int]
    meter: CpuMeter


class Runner:
    """Talks to the gateway, Postgres and Redis for one measurement."""

    def __init__(self, target: Target, pg: asyncpg.Connection, events: aioredis.Redis) -> None:
        self.target = target
        self.pg = pg
        self.events = events

    async def submit(self, client: RawClient) -> Job:
        sent = time.time()
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            status, payload = await client.post(self.target.gateway.body)
        answered_perf, answered_wall = time.perf_counter(), time.time()
        if status != 200 or self.target.gateway.expect not in payload:
            raise BadAnswer(f"background create answered {status}: {payload[:300]!r}")
        return Job(sent, answered_wall, answered_perf, msgspec.json.decode(payload)["id"])

    async def watch(self, job: Job) -> None:
        """Stamp when `response.in_progress` shows in the event log (XREAD wakes on XADD)."""
        key = f"rapport:events:{job.response_id}"
        found: Any = await self.events.xread({key: "0-2"}, count=1, block=30_000)
        job.seen_perf = time.perf_counter()
        entries = [entry for _stream, entries in found or [] for entry in entries]
        if not entries or entries[0][0] != IN_PROGRESS_ENTRY.encode():
            raise BadAnswer(f"{job.response_id}: no response.in_progress in the event log")

    async def at_rate(self, count: int, rate: float) -> list[Job]:
        """Open loop: POST number i at start + i/rate (late ones go at once), each watched."""
        client = RawClient(self.target.gateway)
        jobs: list[Job] = []
        try:
            async with asyncio.TaskGroup() as group:
                loop = asyncio.get_running_loop()
                start = loop.time()
                for number in range(count):
                    await asyncio.sleep(max(0.0, start + number / rate - loop.time()))
                    job = await self.submit(client)
                    jobs.append(job)
                    group.create_task(self.watch(job))
        finally:
            await client.close()
        return jobs

    async def flood(self, count: int, concurrency: int) -> list[Job]:
        """Closed loop: `count` creates as fast as `concurrency` connections go."""
        remaining = iter(range(count))
        jobs: list[Job] = []

        async def worker() -> None:
            client = RawClient(self.target.gateway)
            try:
                for _ in remaining:
                    jobs.append(await self.submit(client))
            finally:
                await client.close()

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        return jobs

    async def finished(self, jobs: list[Job], limit_s: float, alive: Callable[[], None]) -> None:
        """Poll Postgres until every job is terminal, then read its timestamps."""
        ids = [job.response_id for job in jobs]
        deadline = time.monotonic() + limit_s
        while True:
            # Every row is the benchmark's and the phases do not overlap: done = none active.
            active = await self.pg.fetchval(
                "SELECT count(*) FROM responses WHERE status IN ('queued', 'in_progress')"
            )
            if not active:
                break
            alive()
            if time.monotonic() > deadline:
                raise BadAnswer(f"{active} of {len(ids)} jobs still active after {limit_s:g} s")
            await asyncio.sleep(POLL_S)
        rows = await self.pg.fetch(
            "SELECT id, status, created_at, heartbeat_at, completed_at FROM responses "
            "WHERE id = ANY($1::text[])",
            ids,
        )
        by_id = {row["id"]: row for row in rows}
        bad = {row["status"] for row in rows} - {"completed"}
        if bad:
            raise BadAnswer(f"jobs ended {sorted(bad)} instead of completed")
        for job in jobs:
            row = by_id[job.response_id]
            # heartbeat_at is written by the claim (queued → in_progress) and only renewed
            # every lease/3 (10 s by default): for these short runs it is the claim time.
            job.created_at = row["created_at"].timestamp()
            job.claimed_at = row["heartbeat_at"].timestamp()
            job.completed_at = row["completed_at"].timestamp()

    async def commands(self) -> dict[str, int]:
        """Calls per Redis command so far (server-wide: the bench's db is the only busy one)."""
        stats: Any = await self.events.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): int(fields["calls"])
            for name, fields in stats.items()
            if name.removeprefix("cmdstat_").split("|")[0] not in OWN_COMMANDS
        }

    async def requeued(self) -> int:
        """Jobs the sweeper enqueued again (their saq key is `<id>@<bucket>`)."""
        count = 0
        async for _key in self.events.scan_iter(match="saq:job:rapport:*@*", count=1000):
            count += 1
        return count


async def measure(
    args: argparse.Namespace, target: Target, alive: Callable[[], None]
) -> Measurement:
    pg = await asyncpg.connect(target.libpq_url, timeout=10)
    events = aioredis.from_url(target.redis_url)
    try:
        runner = Runner(target, pg, events)
        meter = target.meter
        result = Measurement()

        async def phase(
            jobs: Callable[[], Awaitable[list[Job]]], pause_worker: bool = False
        ) -> Phase:
            """Submit, wait for every job to end; CPU, Redis calls and re-enqueues meanwhile."""
            requeued, commands = await runner.requeued(), await runner.commands()
            before, started, resumed = meter.snapshot(), time.time(), None
            if pause_worker:  # the drain: fill the queue with the worker paused, then let go
                for pid in target.worker_pids:
                    os.kill(pid, signal.SIGSTOP)
                try:
                    submitted = await jobs()
                    await asyncio.sleep(0.5)  # the API's last writes, not charged to the drain
                    before, resumed = meter.snapshot(), time.time()
                finally:
                    for pid in target.worker_pids:
                        os.kill(pid, signal.SIGCONT)
            else:
                submitted = await jobs()
            await runner.finished(submitted, args.job_timeout, alive)
            cpu = meter.spent(before, meter.snapshot())
            after = await runner.commands()
            calls = {name: n - commands.get(name, 0) for name, n in after.items()}
            again = await runner.requeued() - requeued
            return Phase(submitted, started, resumed, cpu, again, calls)

        # Warm-up: the worker is up when these end; then statistics, as on a running server.
        await phase(functools.partial(runner.at_rate, args.warmup, args.rate))
        await pg.execute("ANALYZE")
        result.machine = machine()
        if args.only in (None, "latency"):  # (a) enqueue → start, at a modest rate
            result.latency = await phase(functools.partial(runner.at_rate, args.creates, args.rate))
        if args.only in (None, "throughput"):  # (b) as fast as possible, then the worker alone
            flood = functools.partial(runner.flood, args.jobs, args.submit_concurrency)
            result.end_to_end = await phase(flood)
            result.drain = await phase(flood, pause_worker=True)
        result.attempts = {
            row["attempts"]: row["count"]
            for row in await pg.fetch(
                "SELECT attempts, count(*) FROM responses GROUP BY attempts ORDER BY 1"
            )
        }
        return result
    finally:
        await events.aclose()
        await pg.close()


# --------------------------------------------------------------------------------------------
# Report


def stats(values: Sequence[float]) -> tuple[float, float, float, float]:
    ordered = sorted(values)
    return (
        percentile(ordered, 50),
        percentile(ordered, 90),
        percentile(ordered, 99),
        ordered[-1] if ordered else float("nan"),
    )


def ms_row(name: str, values: Sequence[float]) -> str:
    median, p90, p99, top = stats([v * 1000 for v in values])
    return f"| {name} | {median:.2f} | {p90:.2f} | {p99:.2f} | {top:.2f} |"


@dataclass
class Rates:
    submitted: float  # POSTs answered per second
    overall: float  # jobs / (last completion - start)
    steady: float  # completions per second between the 10th and the 90th percent
    in_flight: float  # mean runs at once while the phase ran
    run: tuple[float, float, float, float]  # claim → completed, ms
    wait: tuple[float, float, float, float]  # created → claim, ms


def rates(phase: Phase) -> Rates:
    jobs = phase.jobs
    answered = max(job.answered_wall for job in jobs)
    done = sorted(job.completed_at for job in jobs)
    start = phase.resumed_wall or phase.started_wall
    low, high = int(len(done) * 0.1), int(len(done) * 0.9) - 1
    steady = (high - low) / (done[high] - done[low]) if done[high] > done[low] else float("nan")
    first_claim = min(job.claimed_at for job in jobs)
    busy = sum(job.completed_at - job.claimed_at for job in jobs)
    return Rates(
        submitted=len(jobs) / (answered - phase.started_wall),
        overall=len(jobs) / (done[-1] - start),
        steady=steady,
        in_flight=busy / (done[-1] - first_claim),
        run=stats([(job.completed_at - job.claimed_at) * 1000 for job in jobs]),
        wait=stats([(job.claimed_at - job.created_at) * 1000 for job in jobs]),
    )


ROLE_NAMES = {
    "api": "API (`rapport serve`)",
    "worker": "worker (`rapport worker`)",
    "upstream": "upstream (`tests/upstream.py`)",
    "postgres": "Postgres backends of the bench database",
    "postgres_other": "other Postgres processes (WAL writer, checkpointer, other databases)",
    "redis": "Redis (`redis-server`)",
    "client": "this benchmark (client, polling)",
}


def redis_calls(phase: Phase) -> str:
    """Redis commands per job in a phase, the busiest first."""
    per_job = {name: n / len(phase.jobs) for name, n in phase.commands.items() if n > 0}
    top = sorted(per_job.items(), key=lambda kv: -kv[1])
    listed = ", ".join(f"{name.upper()} {n:.1f}" for name, n in top[:8])
    return f"{sum(per_job.values()):.1f} per job ({listed})"


def latency_section(args: argparse.Namespace, phase: Phase) -> list[str]:
    jobs = phase.jobs
    seen = [j.seen_perf - j.answered_perf for j in jobs if j.seen_perf is not None]
    return [
        f"### (a) enqueue → start, {len(jobs)} creates at {args.rate:g}/s",
        "",
        "| interval | median ms | p90 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        ms_row(
            "**POST answered → claimed** (`heartbeat_at` written by the claim)",
            [j.claimed_at - j.answered_wall for j in jobs],
        ),
        ms_row(
            "POST answered → `response.in_progress` read back from the event log (upper bound)",
            seen,
        ),
        ms_row(
            "`created_at` → claimed (API accepts, stores, enqueues; worker dequeues, claims)",
            [j.claimed_at - j.created_at for j in jobs],
        ),
        ms_row(
            "POST sent → answered (the create itself)",
            [j.answered_wall - j.sent_wall for j in jobs],
        ),
        ms_row("claimed → completed (the run)", [j.completed_at - j.claimed_at for j in jobs]),
        "",
        (
            f"Worker CPU per job {phase.cpu.roles['worker'] * 1000 / len(jobs):.1f} ms, "
            f"{phase.cpu.roles['worker'] / phase.cpu.wall * 100:.0f} % of a core over the phase; "
            f"Redis commands {redis_calls(phase)}."
        ),
        "",
    ]


def throughput_section(args: argparse.Namespace, e2e: Phase, drain: Phase) -> list[str]:
    measured = [("end to end", e2e, rates(e2e)), ("drain", drain, rates(drain))]
    lines = [
        f"### (b) throughput, {args.jobs} jobs per phase",
        "",
        (
            "| phase | submitted/s | **completed jobs/s** (start → last) | jobs/s 10→90 % | "
            "mean runs at once | run median ms | run p99 ms | queue wait median ms | "
            "queue wait p99 ms |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {r.submitted:.0f} | **{r.overall:.1f}** | {r.steady:.1f} | "
            f"{r.in_flight:.1f} | {r.run[0]:.0f} | {r.run[2]:.0f} | {r.wait[0]:.0f} | "
            f"{r.wait[2]:.0f} |"
            for name, _phase, r in measured
        ),
        "",
        (
            f"End to end: the jobs are POSTed from {args.submit_concurrency} connections as fast "
            "as the API answers while the worker runs; start = first POST. Drain: the worker is "
            "paused (SIGSTOP) while the same number is POSTed, then let go (SIGCONT); start = "
            "the resume, so the rate is the worker's alone. Run = claimed → completed; queue "
            "wait = `created_at` → claimed."
        ),
        "",
        "CPU per process over each phase (from `/proc`; % of one core over the phase's wall time):",
        "",
        (
            "| process | end to end CPU s | % of a core | ms per job | drain CPU s | "
            "% of a core | ms per job |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for role, name in ROLE_NAMES.items():
        cells = []
        for phase in (e2e, drain):
            spent = phase.cpu.roles.get(role, 0.0)
            cells.append(
                f"{spent:.2f} | {spent / phase.cpu.wall * 100:.0f} % | "
                f"{spent * 1000 / len(phase.jobs):.2f}"
            )
        lines.append(f"| {name} | {' | '.join(cells)} |")
    busy = [
        f"{p.cpu.machine_busy * 100:.0f} %" if p.cpu.machine_busy is not None else "n/a"
        for p in (e2e, drain)
    ]
    cpus = os.cpu_count() or 1
    rest = []
    for p in (e2e, drain):
        if p.cpu.machine_busy is None:
            rest.append("n/a | n/a | n/a")
            continue
        other = p.cpu.machine_busy * cpus * p.cpu.wall - sum(p.cpu.roles.values())
        rest.append(
            f"{other:.2f} | {other / p.cpu.wall * 100:.0f} % | {other * 1000 / len(p.jobs):.2f}"
        )
    lines += [
        f"| everything else on the machine (other work, kernel) | {rest[0]} | {rest[1]} |",
        (
            f"| whole machine, busy share of all {cpus} CPUs | {busy[0]} over "
            f"{e2e.cpu.wall:.1f} s | | | {busy[1]} over {drain.cpu.wall:.1f} s | | |"
        ),
        "",
        (
            f"Redis commands, end to end: {redis_calls(e2e)}; drain: {redis_calls(drain)}. "
            f"Jobs the sweeper enqueued again: end to end {e2e.requeued}, drain "
            f"{drain.requeued}."
        ),
        "",
    ]
    return lines


def report(args: argparse.Namespace, result: Measurement, commit: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    slots = args.worker_concurrency * args.workers
    bound = slots / (args.delay_ms / 1000) if args.delay_ms else float("inf")
    # A phase of N jobs takes at least ceil(N / slots) waves of one upstream delay each, so its
    # start → last rate stays under the bound by the ramp of its first and last wave.
    waves = -(-args.jobs // slots)
    phase_bound = args.jobs / (waves * args.delay_ms / 1000) if args.delay_ms else float("inf")
    lines = [
        f"## background · postgres + Redis · {when} · commit {commit}",
        "",
        (
            f"One `rapport serve` and {args.workers} x `rapport worker --concurrency "
            f"{args.worker_concurrency}` on Redis (`{args.redis_url}`, flushed); upstream delay "
            f"{args.delay_ms} ms (a run is ≥ {args.delay_ms} ms, so the upstream bound is "
            f"{bound:.0f} jobs/s, and {phase_bound:.0f} start → last for {args.jobs} jobs in "
            f"{waves} waves); every job is a stored background create of a short prompt; "
            f"{args.warmup} warm-up jobs, then ANALYZE; {result.machine}."
        ),
        "",
    ]
    if result.latency is not None:
        lines += latency_section(args, result.latency)
    if result.end_to_end is not None and result.drain is not None:
        lines += throughput_section(args, result.end_to_end, result.drain)
    lines += [
        "`attempts` over all rows: "
        + ", ".join(f"{n} rows with {a}" for a, n in result.attempts.items())
        + ".",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Setup and teardown


def flush_redis(url: str) -> int:
    """FLUSHDB the bench's own Redis db; returns how many keys it held."""
    client = redis.Redis.from_url(url)
    try:
        keys = int(client.dbsize())
        client.flushdb()
        return keys
    finally:
        client.close()


def run(args: argparse.Namespace) -> Measurement:
    stack = Stack()
    try:
        tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
        stack.push("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
        name, url = create_database(args.admin_url)
        stack.push(f"database {name}", lambda: drop_database(args.admin_url, name))
        held = flush_redis(args.redis_url)
        if held:
            print(f"bench: flushed {held} keys left in {args.redis_url}", file=sys.stderr)

        def flush_after() -> None:
            flush_redis(args.redis_url)

        stack.push(f"Redis {args.redis_url}", flush_after)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        upstream_port, gateway_port = free_port(), free_port()
        env |= {
            "RAPPORT_DATABASE_URL": url,
            "RAPPORT_REDIS_URL": args.redis_url,
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
        upstream += ["--port", str(upstream_port), "--delay-ms", str(args.delay_ms)]
        stack.spawn("upstream", upstream, env, tmp, source)
        stack.spawn("rapport", [rapport, "serve", "--port", str(gateway_port)], env, tmp, source)
        worker = [rapport, "worker", "--concurrency", str(args.worker_concurrency)]
        worker_pids = []
        for number in range(args.workers):
            stack.spawn(f"worker{number}", worker, env, tmp, source)
            worker_pids.append(stack.procs[f"worker{number}"][0].pid)

        def resume_worker() -> None:  # a worker left paused would not act on SIGTERM
            for pid in worker_pids:
                with contextlib.suppress(ProcessLookupError):  # it exited and was reaped
                    os.kill(pid, signal.SIGCONT)

        stack.push("worker resume", resume_worker)  # undone before the worker is stopped
        wait_ready(stack, f"http://127.0.0.1:{upstream_port}/v1/models")
        wait_ready(stack, f"http://127.0.0.1:{gateway_port}/health")
        gateway = Endpoint(
            "127.0.0.1",
            gateway_port,
            "/v1/responses",
            (("Authorization", f"Bearer {secret}"),),
            msgspec.json.encode({"model": MODEL, "input": PROMPT, "background": True}),
            b'"status":"queued"',
        )
        ours, others = postgres_pids(name)
        meter = CpuMeter(
            {
                "api": lambda: [stack.procs["rapport"][0].pid],
                "worker": lambda: worker_pids,
                "upstream": lambda: [stack.procs["upstream"][0].pid],
                "postgres": ours,
                "postgres_other": others,
                "redis": lambda: pids_named("redis-server"),
                "client": lambda: [os.getpid()],
            }
        )
        target = Target(gateway, url.replace("+asyncpg", "", 1), args.redis_url, worker_pids, meter)
        try:
            main: Awaitable[Measurement] = measure(args, target, stack.check_alive)
            return run_bounded(main, args.max_seconds)
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
    parser.add_argument("--creates", type=int, default=300, help="(a) timed creates (300)")
    parser.add_argument("--rate", type=float, default=20.0, help="(a) creates per second (20)")
    parser.add_argument("--warmup", type=int, default=40, help="untimed creates first (40)")
    parser.add_argument("--jobs", type=int, default=400, help="(b) jobs per phase (400)")
    parser.add_argument(
        "--submit-concurrency", type=int, default=8, help="(b) connections POSTing (8)"
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=32, help="rapport worker --concurrency (32)"
    )
    parser.add_argument("--workers", type=int, default=1, help="rapport worker processes (1)")
    parser.add_argument("--delay-ms", type=int, default=200, help="upstream's delay (200)")
    parser.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help="a Redis db of the bench's own (flushed)"
    )
    parser.add_argument(
        "--rev", default=None, help="benchmark this git revision (exported) instead of the tree"
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="libpq URL to CREATE DB")
    parser.add_argument(
        "--job-timeout", type=float, default=180.0, help="seconds for a phase's jobs to end"
    )
    parser.add_argument("--max-seconds", type=float, default=900.0, help="abort after this")
    parser.add_argument(
        "--only", choices=("latency", "throughput"), default=None, help="run one part only"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    code, _result = bench_main(parse_args(argv), run, report)
    return code


if __name__ == "__main__":
    sys.exit(main())
