"""A bounded shutdown for the API process: on SIGTERM (or SIGINT), running responses get
RAPPORT_SHUTDOWN_GRACE seconds to end; those a client still waits on near its end are ended
`failed` with a terminal event (app/providers/draining.py), so the process exits within it.

uvicorn stops taking connections on the signal and waits for open ones up to its own
`timeout_graceful_shutdown` (the grace, set by `rapport serve`); the interruption comes a
moment before that — the margin — so each run can store its ending and send its terminal
event before uvicorn would cut the connection with neither. The handler is chained in front of
uvicorn's, whichever way uvicorn was started, with one process or several.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any

from app.providers import draining

log = logging.getLogger("rapport.shutdown")

# At most this long before the grace ends, running calls are interrupted.
MARGIN_SECONDS = 3.0


def interruption_delay(grace_seconds: float) -> float:
    """How long after the signal running calls are interrupted: the grace less the margin,
    or half the grace when it is short."""
    return max(grace_seconds - MARGIN_SECONDS, grace_seconds / 2)


def chain_handlers(grace_seconds: float) -> None:
    """Interrupt running calls `interruption_delay(grace)` after the first SIGTERM or SIGINT,
    then let the handler installed before (uvicorn's) do its part. Only the main thread can
    install handlers (a server in a thread, as in tests, keeps uvicorn's behaviour)."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    armed: list[asyncio.TimerHandle] = []

    def interrupt() -> None:
        log.warning("shutdown grace ending: interrupting the responses still running")
        draining.begin()

    def arm() -> None:
        if not armed:
            armed.append(loop.call_later(interruption_delay(grace_seconds), interrupt))

    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(arm)
            if callable(previous):
                previous(signum, frame)

        signal.signal(number, handler)
