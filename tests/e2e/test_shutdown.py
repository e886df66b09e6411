"""`rapport serve` given SIGTERM with trickling answers in flight exits within its grace: the
stream ends with `response.failed`, the plain create with a 503, and both are stored failed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI

from app.db.session import create_engine, create_sessionmaker
from tests.conftest import UPSTREAM_KEY, new_project
from tests.e2e.test_upstream_faults import stored_failure_answer
from tests.harness import free_port, postgres_database
from tests.upstream import TestUpstream

ROOT = Path(__file__).resolve().parents[2]
GRACE = 4.0
TRICKLE = "[trickle:200]"  # one byte every 0.2 s: without the drain, minutes of answer


@pytest.fixture
def own_database() -> Iterator[str]:
    """Its own database: this server's in-process sweeper must not touch other tests' rows."""
    with postgres_database() as url:
        yield url


def serve(
    database_url: str, upstream: TestUpstream, port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RAPPORT_DATABASE_URL": database_url,
        "RAPPORT_UPSTREAM_BASE_URL": upstream.base_url,
        "RAPPORT_UPSTREAM_API_KEY": UPSTREAM_KEY,
        "RAPPORT_SHUTDOWN_GRACE": str(GRACE),
        "RAPPORT_LOG_FORMAT": "json",
    }
    env.pop("RAPPORT_REDIS_URL", None)
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


async def ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            assert proc.poll() is None, "rapport serve exited at start-up"
            try:
                if (await http.get(f"{base}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("rapport serve did not start")


async def test_sigterm_ends_trickling_responses_and_exits_within_the_grace(
    own_database: str, upstream: TestUpstream, tmp_path: Path
) -> None:
    engine = create_engine(own_database)
    sessions = create_sessionmaker(engine)
    project = await new_project(sessions)
    port = free_port()
    log = tmp_path / "serve.log"
    proc = serve(own_database, upstream, port, log)
    try:
        await ready(f"http://127.0.0.1:{port}", proc)
        client = AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=project.secret, max_retries=0
        )
        plain = asyncio.create_task(
            client.responses.create(model="test-model", input=f"plain {TRICKLE}")
        )
        stream = await client.responses.create(
            model="test-model", input=f"streamed {TRICKLE}", stream=True
        )
        events = []
        signalled = 0.0
        async for event in stream:
            events.append(event)
            if event.type == "response.in_progress":
                await asyncio.sleep(0.5)  # the plain create is in flight too by now
                proc.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
        assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
        assert events[-1].type == "response.failed"
        final = events[-1].response
        assert final.error is not None
        assert "shut down before the answer ended" in final.error.message
        with pytest.raises(openai.APIStatusError) as caught:
            await plain
        plain_id = stored_failure_answer(caught.value, 503)
        # uvicorn re-raises the signal once it is done: the exit a SIGTERM'd process makes.
        assert proc.wait(timeout=GRACE + 5) in (0, -signal.SIGTERM)
        exited = time.monotonic() - signalled
        assert exited < GRACE, (exited, log.read_text())
        assert "Traceback" not in log.read_text()
        async with sessions() as session:
            rows = (
                await session.execute(
                    sa.text("SELECT id, status, error FROM responses WHERE id IN (:a, :b)"),
                    {"a": final.id, "b": plain_id},
                )
            ).all()
        assert {row.id: row.status for row in rows} == {final.id: "failed", plain_id: "failed"}
        for row in rows:
            assert row.error["code"] == "server_error"
            assert "shut down before the answer ended" in row.error["message"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        await engine.dispose()
