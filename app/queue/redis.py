"""The Redis queue, on saq: at-least-once delivery, dedupe by job key, one job = one response id.

saq brings the worker loop, concurrency and blocking dequeue; Rapport keeps the states in
Postgres. Aborts travel on a Redis pub/sub channel that every worker listens to, so a cancel
reaches the process running the response at once, whatever key its job was enqueued under.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from saq import Queue
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

QUEUE_NAME = "rapport"
JOB_FUNCTION = "run_response"
CANCEL_CHANNEL = "rapport:cancel"
# Postgres is the record of a run; saq only needs to remember a finished job long enough to
# refuse a duplicate enqueue of the same key.
JOB_TTL_SECONDS = 600


class _UnannouncedQueue(RedisQueue):
    """saq's Redis queue without its status announcements.

    saq PUBLISHes every status change of a job for `Queue.listen` and `Job.refresh`, which
    Rapport never uses (the response's state is in the database, its events in the event log):
    two round trips per job that no one received."""

    async def notify(self, job: Job) -> None:
        return None


def make_saq_queue(client: aioredis.Redis) -> Queue:
    return _UnannouncedQueue(client, name=QUEUE_NAME)


class RedisJobQueue:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self.saq = make_saq_queue(client)

    async def enqueue(self, response_id: str, *, key: str | None = None) -> None:
        await self.saq.enqueue(
            JOB_FUNCTION,
            key=key or response_id,
            response_id=response_id,
            timeout=0,  # runs are bounded by the upstream timeout, not by saq
            retries=1,  # retries are decided by the sweeper against the database
            ttl=JOB_TTL_SECONDS,
        )

    async def is_pending(self, response_id: str, started_within: float) -> bool:
        job = await self.saq.job(response_id)
        if job is None:
            return False
        if job.status == Status.QUEUED:
            return True
        age = time.time() - job.started / 1000  # saq keeps milliseconds
        return job.status == Status.ACTIVE and age < started_within

    async def depth(self) -> int:
        """Jobs waiting for a worker."""
        return await self.saq.count("queued")

    async def abort(self, response_id: str) -> None:
        await self._redis.publish(CANCEL_CHANNEL, response_id)

    async def close(self) -> None:
        """The Redis client belongs to the runtime, which closes it."""
