"""A background run's events on their way to the event log, one round trip per burst.

A model's deltas come in bursts, and one fenced append per event was most of a worker's Redis
traffic. Here the first event of a burst is sent at once, and whatever arrives while that
append is on its way goes in the next one, in order: batching that adds no wait to a live
tailer's stream (nothing is held back for a timer), and one append at a time keeps the order.

A failed append (`LeaseLost`, `EventLogClosed`) is raised by the next `add` or by `flush`, so
the run stops at its next event, as it did when each append was awaited. At a run's end,
`unsent` hands back what is still unsent, for the log's fenced end to write with the terminal
event: the last burst costs no round trip of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from app.runs.event_log import EventLog


class LogWriter:
    def __init__(self, log: EventLog, response_id: str, epoch: int) -> None:
        self._log = log
        self._response_id = response_id
        self._epoch = epoch
        self._pending: list[dict[str, Any]] = []
        self._sending: asyncio.Task[None] | None = None
        self._ending = False

    def add(self, event: dict[str, Any]) -> None:
        """Queue one event; starts sending unless an append is already on its way (which then
        takes this one too). Raises the error of an earlier append that failed."""
        self._pending.append(event)
        if self._sending is not None:
            if not self._sending.done():
                return
            sent, self._sending = self._sending, None
            sent.result()
        self._sending = asyncio.create_task(self._send())

    async def flush(self) -> None:
        """Wait until every event added so far is in the log (or raise why it is not)."""
        if self._sending is not None:
            sending, self._sending = self._sending, None
            await sending
        if self._pending:
            await self._send()

    async def unsent(self) -> list[dict[str, Any]]:
        """Wait for the append on its way (raising why it failed) and hand back, in order, the
        events not sent yet: the log's end writes them with the terminal event, in the same
        fenced step, which spares a run's last append its own round trip."""
        self._ending = True  # the append on its way takes no more after its own batch
        if self._sending is not None:
            sending, self._sending = self._sending, None
            await sending
        rest, self._pending = self._pending, []
        return rest

    async def discard(self) -> None:
        """Stop sending (the run was aborted): what is not in the log yet stays out."""
        self._pending.clear()
        if self._sending is not None:
            sending, self._sending = self._sending, None
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sending

    async def _send(self) -> None:
        while self._pending and not self._ending:
            batch, self._pending = self._pending, []
            await self._log.append(self._response_id, batch, self._epoch)
