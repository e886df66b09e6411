"""Worker heartbeats in Redis, so `/ready` can tell a queue that nobody serves.

Every `rapport worker` adds itself to one sorted set, scored by the time it last checked in,
every `EVERY_SECONDS`; a member older than `FRESH_SECONDS` is a dead worker (and is pruned by
the next beat). One key keeps the readiness check a single ZCOUNT, whatever else the Redis
database holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as aioredis

KEY = "rapport:workers"
EVERY_SECONDS = 5.0
FRESH_SECONDS = 15.0

log = logging.getLogger("rapport.worker")


async def beat(client: aioredis.Redis, worker_id: str) -> None:
    now = time.time()
    async with client.pipeline(transaction=False) as pipe:
        pipe.zadd(KEY, {worker_id: now})
        pipe.zremrangebyscore(KEY, "-inf", now - FRESH_SECONDS)
        await pipe.execute()


async def beat_forever(client: aioredis.Redis, worker_id: str) -> None:
    while True:
        try:
            await beat(client, worker_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  (Redis away: the next beat tries again)
            log.warning("heartbeat failed", extra={"error_kind": type(exc).__name__})
        await asyncio.sleep(EVERY_SECONDS)


async def stop(client: aioredis.Redis, worker_id: str) -> None:
    """A worker that stops cleanly leaves at once rather than FRESH_SECONDS later."""
    with contextlib.suppress(Exception):
        await client.zrem(KEY, worker_id)


async def live_workers(client: aioredis.Redis) -> int:
    return int(await client.zcount(KEY, time.time() - FRESH_SECONDS, "+inf"))
