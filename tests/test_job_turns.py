"""A worker's runs take turns for their own work (app/queue/worker.py): a run waits for a turn
before its claim, and gives it back however the claim ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.responses.service import ResponseService
from app.runs import jobs
from app.runtime import Runtime
from tests.conftest import server_settings
from tests.upstream import TestUpstream


@pytest.fixture
async def runtime(database_url: str, upstream: TestUpstream) -> AsyncIterator[Runtime]:
    runtime = Runtime(server_settings(database_url, upstream))
    await runtime.open()
    yield runtime
    await runtime.close()


async def test_a_run_waits_for_a_turn_and_gives_it_back(runtime: Runtime) -> None:
    turns = asyncio.Semaphore(1)
    responses = ResponseService(runtime)
    await turns.acquire()  # another run's turn
    run = asyncio.create_task(jobs.run_job(runtime, responses, "resp_nosuchresponse", turns))
    await asyncio.sleep(0.2)
    assert not run.done()  # it has not claimed anything yet
    turns.release()
    await asyncio.wait_for(run, 10)  # nothing to claim: it ends
    assert not turns.locked()  # and the turn is free again
    await asyncio.wait_for(jobs.run_job(runtime, responses, "resp_nosuchresponse", turns), 10)
    assert not turns.locked()
