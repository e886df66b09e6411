"""Background mode end to end: saq on Redis with `rapport worker`s, the embedded queue, recovery."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.session import create_engine, create_sessionmaker
from app.queue import worker
from app.queue.redis import RedisJobQueue
from tests.conftest import UPSTREAM_KEY, Project, new_project, sdk, server_settings
from tests.harness import RapportServer, free_port, postgres_database
from tests.upstream import TestUpstream, _DropConnection

T = TypeVar("T")
Event = dict[str, Any]
Sessions = async_sessionmaker[AsyncSession]

ROOT = Path(__file__).resolve().parents[2]
# A db of its own, flushed at the start; RAPPORT_TEST_REDIS_URL lets parallel runs use others.
REDIS_URL = os.environ.get("RAPPORT_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
TIMINGS: dict[str, Any] = {
    "lease_seconds": 3.0,
    "requeue_after_seconds": 2.0,
    "event_ttl_seconds": 5.0,
    "max_attempts": 3,
}
SLOW = "[sleep:250]"  # ~10 chunks, 250 ms apart: a run of about 2.5 s
TERMINAL = ("completed", "failed", "incomplete", "cancelled")


# --- fixtures: a database, Redis db and Rapport of this module's own, and worker processes ---


@pytest.fixture(scope="module")
def bg_database_url() -> Iterator[str]:
    """Its own database, so the session server's in-process sweeper never touches these rows."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
async def bg_engine(bg_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(bg_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def bg_sessions(bg_engine: AsyncEngine) -> Sessions:
    return create_sessionmaker(bg_engine)


@pytest.fixture(scope="module")
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture(scope="module")
def rapport_redis(
    bg_database_url: str, upstream: TestUpstream, redis: aioredis.Redis
) -> Iterator[RapportServer]:
    settings = server_settings(bg_database_url, upstream, redis_url=REDIS_URL, **TIMINGS)
    server = RapportServer(settings).start()
    yield server
    server.stop()


@pytest.fixture
async def bg_project(bg_sessions: Sessions) -> Project:
    return await new_project(bg_sessions)


@pytest.fixture
def bg_client(rapport_redis: RapportServer, bg_project: Project) -> AsyncOpenAI:
    return sdk(rapport_redis, bg_project)


@pytest.fixture
async def bg_http(
    rapport_redis: RapportServer, bg_project: Project
) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {bg_project.secret}"}
    async with httpx.AsyncClient(
        base_url=rapport_redis.base_url, headers=headers, timeout=30
    ) as http:
        yield http


class Workers:
    """`rapport worker` subprocesses on the module's Redis db and database; stderr to files."""

    def __init__(self, database_url: str, upstream: TestUpstream, log_dir: Path) -> None:
        self._env = {
            **os.environ,
            "RAPPORT_DATABASE_URL": database_url,
            "RAPPORT_REDIS_URL": REDIS_URL,
            "RAPPORT_UPSTREAM_BASE_URL": upstream.base_url,
            "RAPPORT_UPSTREAM_API_KEY": UPSTREAM_KEY,
            "RAPPORT_LEASE_SECONDS": str(TIMINGS["lease_seconds"]),
            "RAPPORT_REQUEUE_AFTER_SECONDS": str(TIMINGS["requeue_after_seconds"]),
            "RAPPORT_EVENT_TTL_SECONDS": str(TIMINGS["event_ttl_seconds"]),
            "RAPPORT_MAX_ATTEMPTS": str(TIMINGS["max_attempts"]),
            # SIGTERM gives running jobs back at once (a test of the grace sets its own).
            "RAPPORT_SHUTDOWN_GRACE": "0",
        }
        self._log_dir = log_dir
        self._procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, concurrency: int = 4, **env: str) -> subprocess.Popen[bytes]:
        log = self._log_dir / f"worker-{len(self._procs)}.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app", "worker", "--concurrency", str(concurrency)],
                cwd=ROOT,
                env={**self._env, **env},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self._procs.append((proc, log))
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no shutdown code runs, the run's row is left in_progress."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc, _ in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in self._procs:
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def deliveries(self, response_id: str) -> list[int]:
        """Per worker, the jobs for `response_id` that saq says it finished."""
        return [
            sum(
                f"key: {response_id}" in line
                for line in log.read_text().splitlines()
                if "Finished Job" in line
            )
            for _, log in self._procs
        ]

    async def all_started(self) -> bool:
        """Every worker started so far has logged that it serves the queue."""
        return all("started, concurrency" in log.read_text() for _, log in self._procs)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')}" for _, log in self._procs
        )


@pytest.fixture
def workers(
    bg_database_url: str, upstream: TestUpstream, rapport_redis: RapportServer, tmp_path: Path
) -> Iterator[Workers]:
    pool = Workers(bg_database_url, upstream, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
        print(pool.logs())  # shown by pytest when the test failed


@pytest.fixture
def hangups(upstream: TestUpstream, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each time the test upstream notices its client hung up mid-answer."""
    seen: list[float] = []
    pause = upstream._pause

    async def recording_pause(seconds: float, receive: Any) -> None:
        try:
            await pause(seconds, receive)
        except _DropConnection:
            seen.append(seconds)
            raise

    monkeypatch.setattr(upstream, "_pause", recording_pause)
    return seen


# --- helpers ---


async def eventually(check: Callable[[], Awaitable[T]], what: str, within: float = 30.0) -> T:
    """Poll `check` until it gives something truthy, for at most `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.05)


async def now(value: T) -> T:
    """A value as an awaitable, for `eventually(lambda: now(...))` on in-process state."""
    return value


def marked(text: str = "") -> str:
    """A unique input, so the upstream's requests for one response can be counted."""
    return f"job-{uuid.uuid4().hex[:10]} {text}".strip()


def calls(upstream: TestUpstream, marker: str) -> int:
    return sum(marker.split()[0] in json.dumps(r.body) for r in upstream.requests)


async def stored(sessions: Sessions, response_id: str) -> dict[str, Any]:
    async with sessions() as session:
        row = (
            await session.execute(
                sa.text("SELECT status, attempts, error FROM responses WHERE id = :id"),
                {"id": response_id},
            )
        ).one()
    return dict(row._mapping)


def error_message(error: openai.APIStatusError) -> str:
    body: Any = error.body
    return str(body["message"])


async def status_of(client: AsyncOpenAI, response_id: str) -> str:
    return (await client.responses.retrieve(response_id)).status or ""


async def ended(client: AsyncOpenAI, response_id: str, within: float = 30.0) -> Any:
    async def check() -> Any:
        response = await client.responses.retrieve(response_id)
        return response if response.status in TERMINAL else None

    return await eventually(check, f"{response_id} to end", within)


async def sse(answer: httpx.Response) -> AsyncIterator[Event]:
    async for line in answer.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line.removeprefix("data: "))


async def read_stream(
    http: httpx.AsyncClient, response_id: str, after: int | None, **query: str
) -> list[Event]:
    params: dict[str, Any] = {"stream": "true", **query}
    if after is not None:
        params["starting_after"] = after
    async with http.stream("GET", f"/responses/{response_id}", params=params) as answer:
        assert answer.status_code == 200, await answer.aread()
        return [event async for event in sse(answer)]


def check_log(events: list[Event], text: str) -> None:
    """A whole background stream: 0, 1, … ; created+queued (queued), in_progress, …, completed."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert [e["response"]["status"] for e in events[:3]] == ["queued", "queued", "in_progress"]
    assert all(e["response"]["background"] is True for e in events if "response" in e)
    assert kinds[-1] == "response.completed"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == f"echo: {text}"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == deltas


# --- Redis queue and `rapport worker`: states, concurrency, at-least-once ---


async def test_states_queued_in_progress_completed(
    bg_client: AsyncOpenAI, workers: Workers, bg_sessions: Sessions
) -> None:
    text = marked(f"one two three {SLOW}")
    created = await bg_client.responses.create(model="test-model", input=text, background=True)
    assert (created.status, created.background) == ("queued", True)
    assert created.output == []
    assert created.usage is None
    assert created.completed_at is None
    fetched = await bg_client.responses.retrieve(created.id)
    assert (fetched.status, fetched.background) == ("queued", True)  # no worker yet
    workers.start()

    async def running() -> Any:
        response = await bg_client.responses.retrieve(created.id)
        return response if response.status == "in_progress" else None

    running_now = await eventually(running, "in_progress")
    assert running_now.background is True
    assert running_now.output == []
    done = await ended(bg_client, created.id)
    assert (done.status, done.background, done.output_text) == ("completed", True, f"echo: {text}")
    assert done.usage is not None
    assert done.completed_at is not None
    assert (await stored(bg_sessions, created.id))["status"] == "completed"


async def test_background_logprobs_reach_the_stored_answer(
    bg_client: AsyncOpenAI, workers: Workers
) -> None:
    workers.start()
    created = await bg_client.responses.create(
        model="test-model",
        input=marked("how sure"),
        background=True,
        include=["message.output_text.logprobs"],
        top_logprobs=2,
    )
    done = await ended(bg_client, created.id)
    part = done.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text"
    assert part.logprobs is not None
    assert "".join(entry.token for entry in part.logprobs) == part.text
    assert all(len(entry.top_logprobs) == 2 for entry in part.logprobs)


async def test_upstream_failure_ends_failed(bg_client: AsyncOpenAI, workers: Workers) -> None:
    workers.start()
    created = await bg_client.responses.create(
        model="test-model", input=marked("[fail:500]"), background=True
    )
    done = await ended(bg_client, created.id)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error.code == "server_error"
    assert done.error.message


@pytest.mark.parametrize("server", ["redis", "embedded"])
async def test_background_without_store_is_400(
    bg_client: AsyncOpenAI, client: AsyncOpenAI, server: str
) -> None:
    api = bg_client if server == "redis" else client
    with pytest.raises(openai.BadRequestError) as caught:
        await api.responses.create(model="test-model", input="hi", background=True, store=False)
    assert caught.value.param == "background"


async def test_worker_runs_n_jobs_at_once(
    bg_client: AsyncOpenAI, workers: Workers, bg_sessions: Sessions
) -> None:
    ids = [
        (
            await bg_client.responses.create(
                model="test-model", input=marked(SLOW), background=True
            )
        ).id
        for _ in range(5)
    ]
    workers.start(concurrency=3)
    most = 0

    async def all_ended() -> bool:
        nonlocal most
        statuses = [(await stored(bg_sessions, i))["status"] for i in ids]
        most = max(most, statuses.count("in_progress"))
        return all(s == "completed" for s in statuses)

    await eventually(all_ended, "5 jobs to complete")
    assert most == 3


async def test_a_job_seen_by_two_workers_runs_once(
    bg_client: AsyncOpenAI,
    workers: Workers,
    redis: aioredis.Redis,
    bg_sessions: Sessions,
    upstream: TestUpstream,
) -> None:
    raced, control = marked(f"a b c d e f g h i j {SLOW}"), marked()
    # Both workers are up before the job exists: on a loaded machine a worker's start can take
    # longer than the run, and then the first would take the later deliveries itself.
    workers.start(concurrency=1)
    workers.start(concurrency=1)
    await eventually(workers.all_started, "both workers to start")
    raced_id = (
        await bg_client.responses.create(model="test-model", input=raced, background=True)
    ).id

    async def running() -> bool:
        return await status_of(bg_client, raced_id) == "in_progress"

    await eventually(running, "a worker to run it")  # that one is busy with it for ~2.5 s
    queue = RedisJobQueue(redis)
    # Delivered again, under other keys: more times than the busy worker takes ahead of its
    # one slot (app/queue/worker.py), so the idle worker gets some of them.
    again = worker.TAKEN_AHEAD + 4
    for n in range(again):
        await queue.enqueue(raced_id, key=f"{raced_id}@{n}")
    control_id = (
        await bg_client.responses.create(model="test-model", input=control, background=True)
    ).id
    for response_id in (control_id, raced_id):
        assert (await ended(bg_client, response_id)).status == "completed"

    async def delivered() -> list[int]:
        seen = workers.deliveries(raced_id)
        return seen if sum(seen) >= 1 + again else []

    assert all(await eventually(delivered, "every delivery"))  # both workers got it
    assert (calls(upstream, raced), calls(upstream, control)) == (1, 1)
    raced_row, control_row = (
        await stored(bg_sessions, raced_id),
        await stored(bg_sessions, control_id),
    )
    assert raced_row["attempts"] == control_row["attempts"]  # one run each


async def test_attempts_count_runs(
    bg_client: AsyncOpenAI, workers: Workers, bg_sessions: Sessions
) -> None:
    workers.start()
    created = await bg_client.responses.create(model="test-model", input=marked(), background=True)
    assert (await stored(bg_sessions, created.id))["attempts"] == 0  # not run yet
    assert (await ended(bg_client, created.id)).status == "completed"
    assert (await stored(bg_sessions, created.id))["attempts"] == 1


async def test_200_jobs_through_one_worker(
    bg_client: AsyncOpenAI, workers: Workers, bg_sessions: Sessions
) -> None:
    workers.start(concurrency=32)
    gate = asyncio.Semaphore(20)

    async def create(n: int) -> str:
        async with gate:
            response = await bg_client.responses.create(
                model="test-model", input=f"job {n}", background=True
            )
            return response.id

    ids = await asyncio.gather(*(create(n) for n in range(200)))

    async def all_completed() -> bool:
        async with bg_sessions() as session:
            rows = await session.execute(
                sa.text("SELECT status, count(*) FROM responses WHERE id = ANY(:ids) GROUP BY 1"),
                {"ids": list(ids)},
            )
            return dict(rows.all()) == {"completed": 200}

    await eventually(all_completed, "200 jobs to complete", within=60)


# --- cancel ---


async def test_cancel_queued(
    bg_client: AsyncOpenAI, workers: Workers, upstream: TestUpstream
) -> None:
    text = marked()
    created = await bg_client.responses.create(model="test-model", input=text, background=True)
    cancelled = await bg_client.responses.cancel(created.id)
    assert (cancelled.id, cancelled.status, cancelled.background) == (created.id, "cancelled", True)
    assert cancelled.output == []
    assert cancelled.usage is None
    assert cancelled.completed_at is None
    again = await bg_client.responses.cancel(created.id)  # idempotent
    assert again.model_dump() == cancelled.model_dump()
    assert (await bg_client.responses.retrieve(created.id)).status == "cancelled"
    # A worker started later gets the queued job, claims nothing and never calls the upstream.
    workers.start()
    later = await bg_client.responses.create(model="test-model", input=marked(), background=True)
    assert (await ended(bg_client, later.id)).status == "completed"
    assert (await bg_client.responses.retrieve(created.id)).status == "cancelled"
    assert calls(upstream, text) == 0


async def test_cancel_in_progress_mid_stream(
    bg_client: AsyncOpenAI,
    bg_http: httpx.AsyncClient,
    workers: Workers,
    bg_sessions: Sessions,
    upstream: TestUpstream,
    hangups: list[float],
) -> None:
    workers.start()
    text = marked("a b c d e f g h [sleep:500]")  # far apart: the abort lands between appends
    body = {"model": "test-model", "input": text, "background": True, "stream": True}
    events: list[Event] = []
    async with bg_http.stream("POST", "/responses", json=body) as answer:
        async for event in sse(answer):
            events.append(event)
            if sum(e["type"] == "response.output_text.delta" for e in events) == 2:
                response_id = events[0]["response"]["id"]
                cancelled = await bg_client.responses.cancel(response_id)
                assert (cancelled.status, cancelled.background) == ("cancelled", True)
                assert cancelled.usage is None
                assert cancelled.completed_at is None
        # the stream ends after the cancel, with no terminal event
    kinds = [e["type"] for e in events]
    assert not {"response.completed", "response.failed", "response.incomplete"} & set(kinds)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    await eventually(lambda: now(hangups), "the upstream call to be aborted")
    assert calls(upstream, text) == 1
    row = await stored(bg_sessions, response_id)
    assert (row["status"], row["error"]) == ("cancelled", None)
    # The run has stopped; what the cancel answered is what stays (the partial text stays in
    # the event log only).
    later = await bg_client.responses.retrieve(response_id)
    assert (later.status, later.output) == ("cancelled", cancelled.output)
    assert (await bg_client.responses.cancel(response_id)).model_dump() == later.model_dump()


async def test_cancel_reaches_a_worker_that_missed_the_abort_message(
    bg_client: AsyncOpenAI,
    workers: Workers,
    redis: aioredis.Redis,
    upstream: TestUpstream,
    hangups: list[float],
) -> None:
    workers.start()
    text = marked(f"a b c d e f g h i j k l m n o p {SLOW}")
    created = await bg_client.responses.create(model="test-model", input=text, background=True)

    async def some_deltas() -> bool:
        return await redis.xlen(f"rapport:events:{created.id}") >= 6

    await eventually(some_deltas, "the first deltas")
    for conn in await redis.client_list():  # drop the worker's cancel listener (pub/sub is
        if conn["db"] == "7" and int(conn.get("sub", 0)):  # at-most-once): the abort is missed
            await redis.client_kill_filter(_id=conn["id"])
    answered = await bg_client.responses.cancel(created.id)
    assert answered.status == "cancelled"
    # The lease renewal (every lease/3, 1 s) finds the row cancelled and stops the run.
    await eventually(lambda: now(hangups), "the upstream call to be aborted", within=5)
    assert calls(upstream, text) == 1
    later = await bg_client.responses.retrieve(created.id)
    assert later.model_dump() == answered.model_dump()


async def test_cancel_ended_returns_it_unchanged(bg_client: AsyncOpenAI, workers: Workers) -> None:
    workers.start()
    created = await bg_client.responses.create(model="test-model", input=marked(), background=True)
    done = await ended(bg_client, created.id)
    assert done.status == "completed"
    assert (await bg_client.responses.cancel(created.id)).model_dump() == done.model_dump()
    assert (await bg_client.responses.retrieve(created.id)).model_dump() == done.model_dump()


async def test_what_a_cancel_answers_is_what_stays_stored(
    bg_client: AsyncOpenAI, workers: Workers, redis: aioredis.Redis
) -> None:
    """Against an upstream that answers at once, a cancel lands anywhere in a run: before the
    claim, mid-stream, or after the settle. Whichever wins, the row never changes afterwards."""
    workers.start(concurrency=2)
    queue = RedisJobQueue(redis)
    outcomes: dict[str, int] = {}
    for _ in range(200):
        created = await bg_client.responses.create(
            model="test-model", input=marked("a b c d e f"), background=True
        )
        answered = await bg_client.responses.cancel(created.id)
        outcomes[answered.status or ""] = outcomes.get(answered.status or "", 0) + 1

        async def job_done(response_id: str = created.id) -> bool:
            job = await queue.saq.job(response_id)
            return job is not None and job.status in ("complete", "failed", "aborted")

        await eventually(job_done, "the worker to be done with the job", within=10)
        later = await bg_client.responses.retrieve(created.id)
        assert later.status in ("cancelled", "completed")
        assert (later.status, later.output) == (answered.status, answered.output), outcomes
        assert (later.usage, later.error) == (answered.usage, answered.error)
    assert outcomes.get("cancelled"), outcomes  # the race was run: some cancels won


@pytest.mark.parametrize("server", ["redis", "embedded"])
async def test_cancel_synchronous_is_400_unknown_or_foreign_404(
    bg_client: AsyncOpenAI,
    client: AsyncOpenAI,
    rapport_redis: RapportServer,
    bg_sessions: Sessions,
    other_client: AsyncOpenAI,
    server: str,
) -> None:
    api = bg_client if server == "redis" else client
    other = (
        sdk(rapport_redis, await new_project(bg_sessions)) if server == "redis" else other_client
    )
    sync = await api.responses.create(model="test-model", input="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        await api.responses.cancel(sync.id)
    assert error_message(caught.value) == "Cannot cancel a synchronous response."
    assert caught.value.type == "invalid_request_error"
    assert (await api.responses.retrieve(sync.id)).status == "completed"
    queued = await api.responses.create(model="test-model", input="hi", background=True)
    for client_, response_id in [(api, "resp_does_not_exist"), (other, queued.id)]:
        with pytest.raises(openai.NotFoundError) as missing:
            await client_.responses.cancel(response_id)
        assert error_message(missing.value) == f"Response with id '{response_id}' not found."
    await api.responses.cancel(queued.id)  # leave nothing queued behind


# --- crash recovery: the sweeper ---


async def test_worker_killed_mid_generation_is_retried(
    bg_client: AsyncOpenAI,
    bg_http: httpx.AsyncClient,
    workers: Workers,
    bg_sessions: Sessions,
    upstream: TestUpstream,
    redis: aioredis.Redis,
) -> None:
    first = workers.start()
    text = marked(f"survive a crash {SLOW}")
    created = await bg_client.responses.create(model="test-model", input=text, background=True)

    async def generating() -> bool:
        return (
            calls(upstream, text) == 1 and await status_of(bg_client, created.id) == "in_progress"
        )

    await eventually(generating, "the first run to start")

    async def some_deltas() -> bool:
        return await redis.xlen(f"rapport:events:{created.id}") >= 6  # …, 2 deltas

    await eventually(some_deltas, "the first deltas")
    attempts = (await stored(bg_sessions, created.id))["attempts"]
    workers.kill(first)
    assert await status_of(bg_client, created.id) == "in_progress"  # orphaned, for now
    workers.start()
    done = await ended(bg_client, created.id)
    assert (done.status, done.output_text) == ("completed", f"echo: {text}")
    assert calls(upstream, text) == 2
    assert (await stored(bg_sessions, created.id))["attempts"] == attempts + 1
    check_log(await read_stream(bg_http, created.id, None), text)  # the retry's events only


async def test_sigterm_gives_the_run_back(
    bg_client: AsyncOpenAI, workers: Workers, upstream: TestUpstream
) -> None:
    first = workers.start()
    text = marked(f"graceful {SLOW}")
    created = await bg_client.responses.create(model="test-model", input=text, background=True)
    await eventually(lambda: now(calls(upstream, text)), "the run to start")
    first.terminate()
    assert first.wait(timeout=10) == 0
    assert await status_of(bg_client, created.id) == "queued"  # given back
    workers.start()
    done = await ended(bg_client, created.id)
    assert (done.status, done.output_text) == ("completed", f"echo: {text}")
    assert calls(upstream, text) == 2


async def test_sigterm_lets_a_run_end_within_the_grace(
    bg_client: AsyncOpenAI, workers: Workers, upstream: TestUpstream
) -> None:
    first = workers.start(RAPPORT_SHUTDOWN_GRACE="8")  # runs end by 5 s (8 less the margin)
    text = marked(f"finish me {SLOW}")  # about 2.5 s
    created = await bg_client.responses.create(model="test-model", input=text, background=True)
    await eventually(lambda: now(calls(upstream, text)), "the run to start")
    first.terminate()
    assert first.wait(timeout=15) == 0
    done = await bg_client.responses.retrieve(created.id)  # ended before the process did
    assert (done.status, done.output_text) == ("completed", f"echo: {text}")
    assert calls(upstream, text) == 1


async def test_sigterm_starts_none_of_the_jobs_taken_ahead(
    bg_client: AsyncOpenAI, workers: Workers, bg_sessions: Sessions, upstream: TestUpstream
) -> None:
    """A worker takes a few jobs ahead of a free slot (app/queue/worker.py). Stopping, it lets
    its run end within the grace but starts none of them: they stay queued, untouched, and
    another worker runs each once."""
    first = workers.start(concurrency=1, RAPPORT_SHUTDOWN_GRACE="8")
    await eventually(workers.all_started, "the worker to start")
    running_text = marked(f"finish me {SLOW}")
    running = await bg_client.responses.create(
        model="test-model", input=running_text, background=True
    )
    await eventually(lambda: now(calls(upstream, running_text)), "the run to start")
    ahead_texts = [marked("taken ahead") for _ in range(3)]
    ahead = [
        (await bg_client.responses.create(model="test-model", input=t, background=True)).id
        for t in ahead_texts
    ]
    first.terminate()
    assert first.wait(timeout=15) == 0
    done = await bg_client.responses.retrieve(running.id)  # ended before the process did
    assert done.status == "completed"
    for response_id, text in zip(ahead, ahead_texts, strict=True):
        assert (await stored(bg_sessions, response_id))["status"] == "queued"
        assert calls(upstream, text) == 0
    workers.start()
    for response_id, text in zip(ahead, ahead_texts, strict=True):
        finished = await ended(bg_client, response_id)
        assert (finished.status, finished.output_text) == ("completed", f"echo: {text}")
        assert (await stored(bg_sessions, response_id))["attempts"] == 1
        assert calls(upstream, text) == 1


async def test_a_job_taken_ahead_behind_a_long_run_is_run_by_an_idle_worker(
    bg_client: AsyncOpenAI, workers: Workers, bg_sessions: Sessions, upstream: TestUpstream
) -> None:
    """A job waiting among a busy worker's jobs taken ahead past RAPPORT_REQUEUE_AFTER looks
    forgotten to the sweeper, which enqueues it again: an idle worker runs it, once, while the
    long run still goes on."""
    workers.start(concurrency=1)
    await eventually(workers.all_started, "the busy worker to start")
    long_text = marked("a b c d e f g h i j k l [sleep:500]")  # about 7 s
    long_run = await bg_client.responses.create(
        model="test-model", input=long_text, background=True
    )
    await eventually(lambda: now(calls(upstream, long_text)), "the long run to start")
    waiting_text = marked("waiting")
    waiting = await bg_client.responses.create(
        model="test-model", input=waiting_text, background=True
    )
    await asyncio.sleep(0.5)  # the busy worker took it ahead: its one slot is in use
    workers.start(concurrency=1)
    finished = await ended(bg_client, waiting.id)
    assert (finished.status, finished.output_text) == ("completed", f"echo: {waiting_text}")
    assert await status_of(bg_client, long_run.id) == "in_progress"  # beside it, not after
    assert (await stored(bg_sessions, waiting.id))["attempts"] == 1
    assert calls(upstream, waiting_text) == 1
    assert (await ended(bg_client, long_run.id)).status == "completed"


async def test_max_attempts_exhausted_ends_failed(
    bg_client: AsyncOpenAI, workers: Workers, bg_sessions: Sessions, upstream: TestUpstream
) -> None:
    first = workers.start(RAPPORT_MAX_ATTEMPTS="1")
    text = marked(f"doomed {SLOW}")
    created = await bg_client.responses.create(model="test-model", input=text, background=True)
    await eventually(lambda: now(calls(upstream, text)), "the run to start")
    workers.kill(first)
    workers.start(RAPPORT_MAX_ATTEMPTS="1")
    done = await ended(bg_client, created.id)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error.code == "server_error"
    assert "giving up" in done.error.message
    assert calls(upstream, text) == 1
    assert (await stored(bg_sessions, created.id))["status"] == "failed"


async def test_stream_of_a_response_failed_by_the_sweeper_ends_with_response_failed(
    bg_client: AsyncOpenAI, workers: Workers, upstream: TestUpstream
) -> None:
    first = workers.start(RAPPORT_MAX_ATTEMPTS="1")
    text = marked(f"doomed again {SLOW}")
    created = await bg_client.responses.create(model="test-model", input=text, background=True)
    await eventually(lambda: now(calls(upstream, text)), "the run to start")
    workers.kill(first)
    workers.start(RAPPORT_MAX_ATTEMPTS="1")
    assert (await ended(bg_client, created.id)).status == "failed"
    async with bg_client.responses.stream(response_id=created.id) as helper:
        last = [event async for event in helper][-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed"
    assert "giving up" in last.response.error.message  # type: ignore[union-attr]


async def test_redis_flush_loses_no_response(
    bg_client: AsyncOpenAI, workers: Workers, redis: aioredis.Redis, upstream: TestUpstream
) -> None:
    texts = [marked() for _ in range(5)]
    ids = [
        (await bg_client.responses.create(model="test-model", input=t, background=True)).id
        for t in texts
    ]
    await redis.flushdb()  # the queue (and the event logs) are gone
    workers.start()
    for response_id, text in zip(ids, texts, strict=True):
        done = await ended(bg_client, response_id)
        assert (done.status, done.output_text) == ("completed", f"echo: {text}")
        assert calls(upstream, text) == 1


# --- resumable streams ---


async def sdk_replays(client: AsyncOpenAI, response_id: str, after: int) -> tuple[Any, ...]:
    """Raw `retrieve(stream=True, starting_after=…)` events, then the stream helper's."""
    raw = await client.responses.retrieve(response_id, stream=True, starting_after=after)
    events = [event.model_dump(exclude_unset=True) async for event in raw]
    async with client.responses.stream(response_id=response_id, starting_after=after) as helper:
        numbers = [event.sequence_number async for event in helper]
        final = await helper.get_final_response()
    return events, numbers, final


async def test_resume_from_several_points(
    bg_client: AsyncOpenAI, bg_http: httpx.AsyncClient, workers: Workers
) -> None:
    workers.start()
    text = marked(f"resume me please {SLOW}")
    body = {"model": "test-model", "input": text, "background": True, "stream": True}
    first: list[Event] = []
    async with bg_http.stream("POST", "/responses", json=body) as answer:
        async for event in sse(answer):
            first.append(event)
            if len(first) == 5:
                break  # the client goes away; the run goes on
    response_id = first[0]["response"]["id"]
    afters = (-1, 0, 3)
    # Every reader starts while the run is live: replay, then follow to the end.
    sdk_tasks = [asyncio.create_task(sdk_replays(bg_client, response_id, a)) for a in afters]
    everything, plain, *replays = await asyncio.gather(
        read_stream(bg_http, response_id, None),
        read_stream(bg_http, response_id, None, include_obfuscation="false"),
        *(read_stream(bg_http, response_id, after) for after in afters),
    )
    check_log(everything, text)
    assert everything[:5] == first
    assert all("obfuscation" in e for e in everything if e["type"].endswith(".delta"))
    assert plain == [{k: v for k, v in e.items() if k != "obfuscation"} for e in everything]
    last = everything[-1]["sequence_number"]
    sdk_tasks.append(asyncio.create_task(sdk_replays(bg_client, response_id, last)))
    replays.append(await read_stream(bg_http, response_id, last))
    for after, replay, task in zip((*afters, last), replays, sdk_tasks, strict=True):
        assert replay == everything[after + 1 :]
        events, numbers, final = await task
        assert events == everything[after + 1 :]
        assert numbers == list(range(after + 1, last + 1))
        assert (final.status, final.output_text) == ("completed", f"echo: {text}")


async def test_stream_outlasts_a_wait_for_a_worker(
    bg_http: httpx.AsyncClient, workers: Workers
) -> None:
    async def late_worker() -> None:
        await asyncio.sleep(7)  # every worker busy for a while: no event for 7 s
        workers.start()

    text = marked()
    body = {"model": "test-model", "input": text, "background": True, "stream": True}
    starter = asyncio.create_task(late_worker())
    try:
        async with bg_http.stream("POST", "/responses", json=body) as answer:
            events = [event async for event in sse(answer)]
    finally:
        starter.cancel()
    check_log(events, text)


async def test_disconnected_client_does_not_stop_the_job(
    bg_client: AsyncOpenAI,
    bg_http: httpx.AsyncClient,
    workers: Workers,
    upstream: TestUpstream,
    hangups: list[float],
) -> None:
    workers.start()
    text = marked(f"keep going {SLOW}")
    body = {"model": "test-model", "input": text, "background": True, "stream": True}
    async with bg_http.stream("POST", "/responses", json=body) as answer:
        async for event in sse(answer):
            response_id = event["response"]["id"]
            break  # gone right after response.created
    done = await ended(bg_client, response_id)
    assert (done.status, done.output_text) == ("completed", f"echo: {text}")
    assert hangups == []
    assert calls(upstream, text) == 1


async def test_events_expire_after_ttl(
    bg_client: AsyncOpenAI, bg_http: httpx.AsyncClient, workers: Workers, redis: aioredis.Redis
) -> None:
    workers.start()
    text = marked()
    stream = await bg_client.responses.create(
        model="test-model", input=text, background=True, stream=True
    )
    events = [event.model_dump(exclude_unset=True) async for event in stream]
    check_log(events, text)
    assert await read_stream(bg_http, events[0]["response"]["id"], 0) == events[1:]
    response_id = events[0]["response"]["id"]

    key = f"rapport:events:{response_id}"
    assert 0 < await redis.ttl(key) <= TIMINGS["event_ttl_seconds"]

    async def expired() -> bool:
        return not await redis.exists(key)

    await eventually(expired, "the events to expire", within=TIMINGS["event_ttl_seconds"] + 5)
    with pytest.raises(openai.BadRequestError) as caught:
        await bg_client.responses.retrieve(response_id, stream=True)
    assert caught.value.param == "stream"
    assert "expired" in error_message(caught.value)
    assert (await bg_client.responses.retrieve(response_id)).status == "completed"  # still stored


async def test_synchronous_response_cannot_be_streamed_again(bg_client: AsyncOpenAI) -> None:
    sync = await bg_client.responses.create(model="test-model", input="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        await bg_client.responses.retrieve(sync.id, stream=True)
    assert caught.value.param == "stream"


# --- the embedded default: no Redis, jobs run in the API process ---


async def test_embedded_states_and_cancel(
    client: AsyncOpenAI, upstream: TestUpstream, hangups: list[float]
) -> None:
    text = marked(f"in process {SLOW}")
    created = await client.responses.create(model="test-model", input=text, background=True)
    assert (created.status, created.background) == ("queued", True)

    async def running() -> bool:
        return await status_of(client, created.id) == "in_progress"

    await eventually(running, "in_progress")
    done = await ended(client, created.id)
    assert (done.status, done.background, done.output_text) == ("completed", True, f"echo: {text}")
    assert (await client.responses.cancel(created.id)).model_dump() == done.model_dump()
    slow = marked(f"cancel me a b c d e f {SLOW}")
    victim = await client.responses.create(model="test-model", input=slow, background=True)
    await eventually(lambda: now(calls(upstream, slow)), "the run to start")
    cancelled = await client.responses.cancel(victim.id)
    assert (cancelled.status, cancelled.background) == ("cancelled", True)
    await eventually(lambda: now(hangups), "the upstream call to be aborted")
    assert (await client.responses.retrieve(victim.id)).status == "cancelled"


async def test_embedded_resume(client: AsyncOpenAI) -> None:
    text = marked(f"embedded resume {SLOW}")
    stream = await client.responses.create(
        model="test-model", input=text, background=True, stream=True
    )
    first: list[Event] = []
    async for event in stream:
        first.append(event.model_dump(exclude_unset=True))
        if len(first) == 4:
            break
    await stream.close()
    response_id = first[0]["response"]["id"]
    raw = await client.responses.retrieve(response_id, stream=True)
    everything = [event.model_dump(exclude_unset=True) async for event in raw]
    check_log(everything, text)
    assert everything[:4] == first
    raw = await client.responses.retrieve(response_id, stream=True, starting_after=3)
    assert [event.model_dump(exclude_unset=True) async for event in raw] == everything[4:]
    async with client.responses.stream(response_id=response_id, starting_after=3) as helper:
        assert [e.sequence_number async for e in helper] == list(range(4, len(everything)))
        assert (await helper.get_final_response()).output_text == f"echo: {text}"


async def test_a_frozen_worker_past_its_lease_never_doubles_the_run(
    bg_client: AsyncOpenAI,
    bg_http: httpx.AsyncClient,
    workers: Workers,
    bg_sessions: Sessions,
    upstream: TestUpstream,
    redis: aioredis.Redis,
) -> None:
    """A worker paused (SIGSTOP) past its lease loses the response to another; woken up, its
    fenced writes are refused: one completed answer, one gapless event log."""
    first = workers.start()
    text = marked(f"freeze me {SLOW}")
    created = await bg_client.responses.create(model="test-model", input=text, background=True)

    async def some_deltas() -> bool:
        return await redis.xlen(f"rapport:events:{created.id}") >= 6

    await eventually(some_deltas, "the first deltas")
    first.send_signal(signal.SIGSTOP)
    try:
        workers.start()
        done = await ended(bg_client, created.id, within=40)
        assert (done.status, done.output_text) == ("completed", f"echo: {text}")
        assert (await stored(bg_sessions, created.id))["attempts"] == 2
    finally:
        first.send_signal(signal.SIGCONT)
    await asyncio.sleep(TIMINGS["lease_seconds"])  # the thawed run wakes, tries, and stops
    after = await bg_client.responses.retrieve(created.id)
    assert after.model_dump() == done.model_dump()
    check_log(await read_stream(bg_http, created.id, None), text)  # the retry's, no doubles
    assert calls(upstream, text) == 2
    assert first.poll() is None  # the old worker lives on, having let the response go


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    """A Redis of the test's own, keeping nothing on disk."""
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=folder,
    )


async def test_a_create_while_redis_is_down_is_accepted_once_and_runs_later(
    bg_database_url: str,
    bg_sessions: Sessions,
    upstream: TestUpstream,
    workers: Workers,
    tmp_path: Path,
) -> None:
    """Redis down: the create answers 200 `queued` (stored, so no 5xx that an SDK would retry
    into a second response); once Redis is back a worker's sweeper enqueues it, and its event
    log still starts with created and queued."""
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    settings = server_settings(bg_database_url, upstream, redis_url=redis_url, **TIMINGS)
    server = RapportServer(settings).start()
    own_redis: subprocess.Popen[bytes] | None = None
    try:
        project = await new_project(bg_sessions)
        client = sdk(server, project)
        text = marked("accepted while redis is down")
        raw = await client.responses.with_raw_response.create(
            model="test-model", input=text, background=True
        )
        created = raw.parse()
        assert raw.http_response.status_code == 200
        assert created.status == "queued"
        own_redis = start_redis(port, tmp_path)
        workers.start(RAPPORT_REDIS_URL=redis_url)
        done = await ended(client, created.id, within=40)
        assert (done.status, done.output_text) == ("completed", f"echo: {text}")
        assert calls(upstream, text) == 1
        headers = {"authorization": f"Bearer {project.secret}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as http:
            check_log(await read_stream(http, created.id, None), text)
    finally:
        server.stop()
        if own_redis is not None:
            own_redis.terminate()
            own_redis.wait(timeout=10)
