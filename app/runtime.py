"""Process resources, built once and the same way by the API server and the worker.

The engine and its pool, the sessionmaker, one httpx.AsyncClient for every upstream call, the
provider registry, and the job queue and event log (Redis when RAPPORT_REDIS_URL is set, else
their in-process twins). Nothing here is request-scoped, so a streaming body that outlives its
request can still use it.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import httpx
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.session import POOL_SIZE, create_engine, create_sessionmaker
from app.providers.registry import ProviderRegistry
from app.providers.upstream_client import upstream_client
from app.queue.base import JobQueue
from app.queue.local import LocalQueue
from app.queue.redis import RedisJobQueue
from app.runs.event_log import EventLog, MemoryEventLog, RedisEventLog
from app.sealing import Sealer, load_sealer
from app.tokens import encodings

# Allocations before a young collection, then young and middle collections before an older one.
GC_THRESHOLDS = (50_000, 20, 100)


class Runtime:
    def __init__(self, settings: Settings, pool_size: int = POOL_SIZE) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_engine(settings.database_url, pool_size)
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(self.engine)
        self.http = upstream_client(
            settings.upstream_transport,
            httpx.Timeout(
                settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
            ),
        )
        self.providers = ProviderRegistry(settings, self.http)
        self.redis: aioredis.Redis | None = None
        self.event_log: EventLog
        self.queue: JobQueue
        if settings.redis_url:
            # Blocking reads (XREAD BLOCK, saq's BLMOVE) wait up to 5 s; the socket timeout
            # must outlast them, or an idle live stream breaks off with a timeout.
            self.redis = aioredis.from_url(settings.redis_url, socket_timeout=30)
            self.event_log = RedisEventLog(self.redis)
            self.queue = RedisJobQueue(self.redis)
        else:
            self.event_log = MemoryEventLog()
            self.queue = LocalQueue(self._run_local_job)
        # Set by the process that runs jobs in process (the embedded default's API server).
        self.local_job: Callable[[str], Awaitable[None]] | None = None
        self.sealer: Sealer  # set by `open()`: it may have to read the database

    async def open(self) -> None:
        """The start-up work that needs I/O: the sealing key, and the tokenizers (built off the
        event loop now, rather than on some client's first request)."""
        self.sealer = await load_sealer(self.settings.secret_key, self.sessions)
        await asyncio.to_thread(encodings.warm)
        # What start-up built (modules, tokenizers, compiled statements) lives as long as the
        # process: out of the collector's sight, a full collection walks only what requests
        # made since. Without this, each one walked every object and paused the loop 100+ ms.
        gc.collect()
        gc.freeze()
        # A young collection every 700 allocations ran a few times per job and a middle one
        # (2-6 ms) about every 100 ms on a busy worker; what a request makes is mostly freed by
        # reference counts, so collecting cycles less often costs little memory.
        gc.set_threshold(*GC_THRESHOLDS)

    async def _run_local_job(self, response_id: str) -> None:
        if self.local_job is None:
            raise RuntimeError("no in-process job runner is wired")
        await self.local_job(response_id)

    async def close(self) -> None:
        await self.queue.close()
        await self.http.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
