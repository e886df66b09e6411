"""One connection to one MCP server, held by a task of its own for as long as a run needs it.

The `mcp` SDK's transports run inside anyio task groups, which must be entered and left by the
same task and must not be suspended across an async generator's `yield`. A streamed run is such
a generator, so the connection lives in a keeper task instead: the run talks to the client over
the SDK's memory streams from any task, and closing (or cancelling) the run ends the keeper.

Streamable HTTP is the transport; a URL whose path ends in `/sse` gets the older SSE transport,
the convention MCP servers and clients share. Headers (and the bearer `authorization`) go to the
server only: they are held by the connection's HTTP client, never logged or stored.

Sessions open with the initialize handshake (`mode="legacy"`), which every MCP server speaks:
against the SDK's own server a tool call then takes ≈ 4 ms, against ≈ 44 ms on the SDK's
default negotiated (2026) session, and opening and closing cost less too (bench/hosted_mcp.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


class McpUnavailable(Exception):
    """The server could not be reached or refused the session; the message is safe to show."""


class McpConnection:
    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        self._url = url
        self._headers = headers
        self._timeout = timeout
        self._ready: asyncio.Future[Client] | None = None
        self._closing = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    async def client(self) -> Client:
        """The connected client, connecting on first use."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._keeper = asyncio.create_task(self._keep(self._ready))
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), self._timeout)
        except TimeoutError:
            raise McpUnavailable(
                f"The MCP server did not answer within {self._timeout:g} s."
            ) from None

    async def _keep(self, ready: asyncio.Future[Client]) -> None:
        try:
            async with self._session() as client:
                ready.set_result(client)
                await self._closing.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(McpUnavailable(_describe(exc)))
            if isinstance(exc, asyncio.CancelledError):
                raise

    @contextlib.asynccontextmanager
    async def _session(self) -> Any:
        timeout = httpx2.Timeout(self._timeout)
        if urlsplit(self._url).path.rstrip("/").endswith("/sse"):
            transport = sse_client(self._url, headers=self._headers, timeout=self._timeout)
            async with Client(transport, mode="legacy") as client:
                yield client
            return
        async with httpx2.AsyncClient(headers=self._headers, timeout=timeout) as http:
            transport = streamable_http_client(self._url, http_client=http)
            async with Client(transport, mode="legacy") as client:
                yield client

    async def aclose(self) -> None:
        if self._keeper is None:
            return
        self._closing.set()
        try:
            await asyncio.wait_for(self._keeper, 5)
        except BaseException:  # noqa: BLE001  (a server slow to close must not hold the run)
            self._keeper.cancel()
        if self._ready is not None and self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # retrieved: a failed connect was already reported


def _describe(exc: BaseException) -> str:
    """What went wrong, in words safe for a client: the kind of failure and the HTTP status,
    never the URL's query or the headers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"The MCP server answered HTTP {exc.response.status_code}."
    if isinstance(exc, httpx2.TimeoutException):
        return "The MCP server did not answer in time."
    if isinstance(exc, httpx2.TransportError):
        return f"The MCP server could not be reached ({type(exc).__name__})."
    return f"The MCP session failed ({type(exc).__name__})."
