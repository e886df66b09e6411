"""The most bytes one upstream answer may take, counted as they arrive.

An upstream's answer size is its own to choose, and a 50 MB one held the API for most of a
minute at half a gigabyte of memory. The count is made on the body as it is read — whole or
streamed, before any decoding — so an answer is stopped at the cap rather than read to its end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from app.providers.base import UpstreamAnswerTooLarge


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                raise UpstreamAnswerTooLarge(
                    f"the answer passed {self._limit} bytes, the most an answer may take "
                    "(RAPPORT_MAX_ANSWER_BYTES, or the route's max_answer_bytes)"
                )
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def cap(answer: httpx.Response, limit: int) -> None:
    """Stop reading `answer` (not read yet) once its body passes `limit` bytes."""
    stream = answer.stream
    assert isinstance(stream, httpx.AsyncByteStream)  # the async client's answers
    answer.stream = _CappedStream(stream, limit)


async def read_capped(
    client: httpx.AsyncClient, request: httpx.Request, limit: int
) -> httpx.Response:
    """Send `request` and read its whole answer, up to `limit` bytes."""
    answer = await client.send(request, stream=True)
    try:
        cap(answer, limit)
        await answer.aread()
    finally:
        await answer.aclose()
    return answer
