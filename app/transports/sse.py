"""Server-Sent Events framing as OpenAI sends it: `event:` line, one-line JSON `data:`, blank line.

No `data: [DONE]` sentinel: OpenAI's Responses streams simply close after the terminal event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from app.wire.codec import encoder

HEADERS = {
    # Set explicitly: Litestar would otherwise take the route's JSON media type.
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    # Reverse proxies (nginx) buffer responses unless told not to; a buffered stream is no stream.
    "x-accel-buffering": "no",
}


def frame(event: dict[str, Any]) -> bytes:
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + encoder.encode(event) + b"\n\n"


async def frames(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Frame a run's events. Closing the frames closes the run's events at once (aclosing), so
    a client that goes away cancels the run there and then, not when the generator is
    collected."""
    async with aclosing(events):  # type: ignore[type-var]
        async for event in events:
            yield frame(event)
