"""`rapport worker`: runs background responses from the Redis queue, N at a time.

saq's Worker does the dequeuing and the concurrency. Beside it run a listener for cancels (a
cancel published by any API process cancels the run here at once) and a sweeper. SIGTERM stops
taking jobs and lets running ones end within RAPPORT_SHUTDOWN_GRACE; runs still going near its
end are interrupted and their responses given back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from saq import Worker

from app import ids, shutdown
from app.config import Settings
from app.db.session import POOL_SIZE
from app.observability import tracing
from app.queue import heartbeat
from app.queue.redis import CANCEL_CHANNEL, JOB_FUNCTION, RedisJobQueue
from app.queue.sweeper import sweep_forever
from app.responses.service import ResponseService
from app.runs import jobs
from app.runtime import Runtime

log = logging.getLogger("rapport.worker")

# How many runs may be in their own work at once: claiming and rebuilding before the model's
# answer, storing it after. The event loop shares itself among every ready task in turn, so 32
# runs that came together each did a step of their work per turn of the loop and all finished
# it together, late, while the loop sat idle through their upstream waits; the loop ran at 60 %
# of a core and one worker did 63 jobs/s. Taken a few at a time, the runs finish their work in
# order, each going on to its upstream wait while the next works (80-84 jobs/s, 92-95 %).
PREPARING_AT_ONCE = 4

# Jobs a worker takes from the queue ahead of a free run slot. saq's bookkeeping for a job
# (dequeue, mark active, finish: four Redis round trips, ≈ 7 ms on a busy loop) sat in every slot's
# cycle between one run's end and the next run's claim, so 32 slots held 28 runs on average
# (135 jobs/s against a bound of 160). A few jobs dequeued ahead each wait for the next slot and
# claim at once, while the job just ended is finished beside them. A few, not a second
# `concurrency`: a job waiting here is one no other worker can start, until it has waited longer
# than RAPPORT_REQUEUE_AFTER (behind long runs) and the sweeper enqueues it again for any worker;
# whichever claims it first runs it, the other claims nothing.
TAKEN_AHEAD = 4


async def run_worker(settings: Settings, concurrency: int) -> None:
    # A connection for each run at once (each holds one only while it reads or writes, but
    # they come in waves) and a few for the sweeper, the renewals and the cancel listener.
    runtime = Runtime(settings, pool_size=max(POOL_SIZE, concurrency + 8))
    assert isinstance(runtime.queue, RedisJobQueue)  # the CLI refuses to start without Redis
    assert runtime.redis is not None
    tracing.configure()
    await runtime.open()
    worker_id = ids.new_id(ids.WORKER)
    responses = ResponseService(runtime)
    running: dict[str, asyncio.Task[None]] = {}
    turns = asyncio.Semaphore(PREPARING_AT_ONCE)
    slots = asyncio.Semaphore(concurrency)

    async def run_response(_ctx: Any, *, response_id: str) -> None:
        async with slots:  # released before saq finishes the job, so the next one starts now
            if worker.event.is_set():
                # Stopping: a job taken ahead is not started but left for a sweep to enqueue
                # again (a cancel of saq's task while it waits gives it back to the queue too).
                await jobs.leave_for_the_sweeper(runtime, response_id)
                return
            await _run_one(response_id)

    async def _run_one(response_id: str) -> None:
        # The run is a task of its own, so a cancel stops it without cancelling saq's task
        # (saq would then count the job as aborted and wait on it at shutdown).
        run = asyncio.create_task(_traced_job(runtime, responses, response_id, turns))
        running[response_id] = run
        try:
            await asyncio.shield(run)
        except asyncio.CancelledError:
            if run.cancelled() and not asyncio.current_task().cancelling():  # type: ignore[union-attr]
                return  # cancelled by a cancel request: the run settled itself
            run.cancel()  # the worker is shutting down: interrupt the run too
            with contextlib.suppress(asyncio.CancelledError):
                await run
            raise
        finally:
            running.pop(response_id, None)

    worker = Worker(
        runtime.queue.saq,
        functions=[(JOB_FUNCTION, run_response)],
        concurrency=concurrency + TAKEN_AHEAD,
        # SIGTERM: running jobs may finish within the grace; those still going near its end
        # are interrupted and given back to the queue, so the process exits within it.
        shutdown_grace_period_s=round(shutdown.interruption_delay(settings.shutdown_grace_seconds)),
        dequeue_timeout=5,  # bounded blocking dequeue, under the Redis socket timeout
        cancellation_hard_deadline_s=shutdown.MARGIN_SECONDS,
    )
    helpers = [
        asyncio.create_task(_listen_for_cancels(runtime, running)),
        asyncio.create_task(sweep_forever(runtime)),
        asyncio.create_task(heartbeat.beat_forever(runtime.redis, worker_id)),
    ]
    log.info(f"worker {worker_id} started, concurrency {concurrency}")
    try:
        await worker.start()  # returns on SIGTERM/SIGINT (saq installs the handlers)
    finally:
        log.info("worker stopped")
        for task in helpers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await heartbeat.stop(runtime.redis, worker_id)
        await runtime.close()


async def _traced_job(
    runtime: Runtime, responses: ResponseService, response_id: str, turns: asyncio.Semaphore
) -> None:
    with tracing.span("job.run", {"rapport.response_id": response_id}):
        await jobs.run_job(runtime, responses, response_id, turns)


async def _listen_for_cancels(runtime: Runtime, running: dict[str, asyncio.Task[Any]]) -> None:
    assert runtime.redis is not None
    while True:
        try:
            async with runtime.redis.pubsub() as pubsub:
                await pubsub.subscribe(CANCEL_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    task = running.get(message["data"].decode())
                    if task is not None:
                        task.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  (Redis went away: resubscribe shortly)
            log.warning("cancel listener lost Redis", extra={"error_kind": type(exc).__name__})
            await asyncio.sleep(1)
