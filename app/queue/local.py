"""The in-process queue of the embedded default: jobs are asyncio tasks in the API process.

Same contract as the Redis queue (dedupe by key, abort by response id, bounded concurrency), so
`rapport serve` without Redis keeps every state, cancel and resume. Jobs do not survive the
process; the sweeper re-runs what a restart interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("rapport.queue")

Job = Callable[[str], Awaitable[None]]


class LocalQueue:
    def __init__(self, job: Job, concurrency: int = 16) -> None:
        self._job = job
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._keys: set[str] = set()
        self._running = 0

    async def enqueue(self, response_id: str, *, key: str | None = None) -> None:
        key = key or response_id
        if key in self._keys or response_id in self._tasks:
            return
        self._keys.add(key)
        # A context of its own: the job outlives the request that queued it, and must not
        # write into that request's access-log facts or trace.
        task = asyncio.create_task(
            self._run(response_id, key), name=f"job:{response_id}", context=contextvars.Context()
        )
        self._tasks[response_id] = task

    async def is_pending(self, response_id: str, started_within: float) -> bool:
        return response_id in self._tasks

    async def depth(self) -> int:
        """Jobs waiting for a slot (those running hold one)."""
        return max(0, len(self._tasks) - self._running)

    async def abort(self, response_id: str) -> None:
        task = self._tasks.get(response_id)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, response_id: str, key: str) -> None:
        try:
            async with self._slots:
                self._running += 1
                try:
                    await self._job(response_id)
                finally:
                    self._running -= 1
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001  (the job settles its own row; log and move on)
            log.error(
                "job crashed", extra={"response_id": response_id, "error_kind": type(exc).__name__}
            )
        finally:
            self._tasks.pop(response_id, None)
            self._keys.discard(key)
