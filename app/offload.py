"""The CPU-heavy steps of a big request — validating and converting 100,000 input items,
tokenizing a 9 MB input or answer — in a worker thread, so one big request does not stall every
other request on the event loop.

tiktoken releases the GIL while it encodes, so a count in a thread runs beside the loop; pure
Python work in a thread still shares the GIL, but the interpreter hands it back to the loop
every few milliseconds instead of after the whole step. Small values are handled in place: a
thread hand-off costs more than counting a few kilobytes. Telling big from small walks the
value only until the threshold is passed, so that check stays cheap for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Characters of text (each container entry counts one) above which work moves off the loop.
BIG_CHARACTERS = 64 * 1024


def is_big(value: Any, limit: int = BIG_CHARACTERS) -> bool:
    """Whether `value` holds more than `limit` characters of strings and container entries."""
    seen = 0
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, str | bytes):
            seen += len(current)
        elif isinstance(current, dict):
            seen += len(current)
            pending.extend(current.values())
        elif isinstance(current, list | tuple):
            seen += len(current)
            pending.extend(current)
        if seen > limit:
            return True
    return False


async def off_loop(work: Callable[[], T], weight: Any) -> T:
    """`work()`, in a worker thread when `weight` (what it works through) is big."""
    if is_big(weight):
        return await asyncio.to_thread(work)
    return work()
