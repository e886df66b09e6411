"""What Rapport needs of a job queue: enqueue a response id, and abort its run.

A job is only ever a response id; the response row in the database says what to run and is the
source of truth for its state. Jobs are idempotent: running one claims its row with a
conditional UPDATE (queued → in_progress), so a job seen by two workers runs once.
"""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    async def enqueue(self, response_id: str, *, key: str | None = None) -> None:
        """Queue a run of `response_id`. `key` (default: the id) refuses duplicates."""
        ...

    async def is_pending(self, response_id: str, started_within: float) -> bool:
        """True while a job for `response_id` (under its own key) waits in the queue, or was
        taken less than `started_within` seconds ago (a run claims its row at once, so a job
        taken long ago whose row is still queued died with its worker).

        Lets the sweeper tell a job waiting in a backed-up queue from one the queue lost.
        """
        ...

    async def abort(self, response_id: str) -> None:
        """Stop the run of `response_id` wherever it runs; a no-op when none runs."""
        ...

    async def close(self) -> None: ...
