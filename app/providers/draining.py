"""Ending the runs a client waits on when `rapport serve` shuts down.

On SIGTERM the server stops taking connections and gives running responses a grace
(RAPPORT_SHUTDOWN_GRACE) to end by themselves. Those still waiting on their upstream near its
end are interrupted here: each upstream call in flight gets `ServerShuttingDown`, so the run
fails through the usual path — stored `failed`, a `response.failed` event for a stream, a 503
for a plain create — and its connection closes before the server's own cut. Without this, a
trickling upstream held a shutting-down server for minutes, and the cut that ends it at last
leaves the client with no terminal event.

Background runs are not interrupted: at shutdown they go back to the queue (app/runs/jobs.py)
for another process to run, which beats failing them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_waiting: set[asyncio.Timeout] = set()
_draining = False
# False in a background job: it is given back to the queue at shutdown instead.
_interruptible: ContextVar[bool] = ContextVar("rapport_interruptible_run", default=True)


def begin() -> None:
    """Interrupt every upstream call in flight, and every later one (call on the loop)."""
    global _draining
    _draining = True
    now = asyncio.get_running_loop().time()
    for timeout in list(_waiting):
        if not timeout.expired():  # one already expiring ends its call by itself
            timeout.reschedule(now)


def is_draining() -> bool:
    return _draining and _interruptible.get()


def leave_to_the_queue() -> None:
    """This task's runs are background runs: shutdown gives them back to the queue."""
    _interruptible.set(False)


@contextlib.contextmanager
def interruptible(timeout: asyncio.Timeout) -> Iterator[None]:
    """While the body waits on the upstream, shutdown may expire `timeout` early."""
    if not _interruptible.get():
        yield
        return
    if _draining:
        timeout.reschedule(asyncio.get_running_loop().time())
    _waiting.add(timeout)
    try:
        yield
    finally:
        _waiting.discard(timeout)
