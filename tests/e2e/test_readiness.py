"""`/ready`: each check named — database, pending migrations, Redis, a worker's heartbeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis.asyncio as aioredis
from alembic.script import ScriptDirectory

from app import readiness
from app.cli import alembic_config, migrate
from app.config import Settings
from app.queue import heartbeat
from app.runtime import Runtime
from tests.conftest import server_settings
from tests.harness import RapportServer, free_port
from tests.test_cli import blank_postgres_database, cli_env
from tests.upstream import TestUpstream

# A Redis db of its own: the heartbeat key is global to a db.
REDIS_URL = os.environ.get("RAPPORT_TEST_READY_REDIS_URL", "redis://127.0.0.1:6379/11")


def ready(server: RapportServer) -> httpx.Response:
    return httpx.get(server.base_url.removesuffix("/v1") + "/ready", timeout=10)


def one_before_head() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_revision(script.get_current_head())
    assert head is not None
    assert isinstance(head.down_revision, str)
    return head.down_revision


@pytest.fixture
def behind_head(upstream: TestUpstream) -> Iterator[tuple[RapportServer, str]]:
    """A server on a database one migration short of this code's newest."""
    with blank_postgres_database() as (url, _):
        migrate(url, one_before_head())
        server = RapportServer(server_settings(url, upstream)).start()
        try:
            yield server, url
        finally:
            server.stop()


def test_pending_migrations_are_not_ready(behind_head: tuple[RapportServer, str]) -> None:
    server, url = behind_head
    answer = ready(server)
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert "migrations are pending" in body["checks"]["migrations"]
    assert "rapport db upgrade" in body["checks"]["migrations"]

    migrate(url, "head")
    answer = ready(server)
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"database": "ok", "migrations": "ok"}


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError:
        pytest.skip("no Redis answers")
    await client.delete(heartbeat.KEY)
    yield client
    await client.delete(heartbeat.KEY)
    await client.aclose()


@pytest.fixture
def with_redis(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    server = RapportServer(server_settings(database_url, upstream, redis_url=REDIS_URL)).start()
    yield server
    server.stop()


def wait_for_status(server: RapportServer, status: int, within: float = 20) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        answer = ready(server)
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


async def test_no_worker_heartbeat_is_not_ready(
    redis_db: aioredis.Redis, with_redis: RapportServer
) -> None:
    answer = ready(with_redis)
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["redis"] == "ok"
    assert "no `rapport worker` has sent a heartbeat" in checks["worker"]

    await heartbeat.beat(redis_db, "wrk_test")
    assert ready(with_redis).status_code == 200
    await heartbeat.stop(redis_db, "wrk_test")
    assert ready(with_redis).status_code == 503


def test_a_running_worker_makes_it_ready(
    redis_db: aioredis.Redis, with_redis: RapportServer, database_url: str
) -> None:
    env = cli_env(RAPPORT_DATABASE_URL=database_url, RAPPORT_REDIS_URL=REDIS_URL)
    metrics_port = free_port()
    command = [sys.executable, "-m", "app", "worker", "--concurrency", "1"]
    worker = subprocess.Popen(
        [*command, "--metrics-port", str(metrics_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for_status(with_redis, 200).status_code == 200
        # The worker's own runs are counted in its own process, served on its own port.
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert 'rapport_build_info{version="0.1.0"} 1.0' in scraped
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        # A worker that stops cleanly takes its heartbeat with it.
        assert wait_for_status(with_redis, 503, within=5).status_code == 503
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


async def test_unreachable_database_and_redis_are_named() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://rapport:hunter2@127.0.0.1:9/rapport",
        redis_url="redis://:hunter2@127.0.0.1:9/0",
    )
    runtime = Runtime(settings)
    try:
        ok, body = await readiness.check(runtime)
    finally:
        await runtime.close()
    assert not ok
    checks = body["checks"]
    assert (
        "not reachable at postgresql+asyncpg://rapport:***@127.0.0.1:9/rapport"
        in checks["database"]
    )
    assert "not reachable at redis://127.0.0.1:9/0" in checks["redis"]
    assert "hunter2" not in str(body)
