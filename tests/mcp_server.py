"""A real MCP server for the tests: the `mcp` SDK's own server, over streamable HTTP and SSE.

Its tools count their calls and the server records the headers each HTTP request carried, so a
test can tell what Rapport sent, how often, and that credentials reached the server (and only
the server). Each transport listens on a loopback port of its own, in a daemon thread.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Self

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

Scope = MutableMapping[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]


class ToolFailed(Exception):
    """Raised by the `explode` tool; the SDK turns it into an `isError` result."""


def _tools(server: MCPServer, calls: Counter[str]) -> None:
    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> str:
        calls["add"] += 1
        return str(a + b)

    @server.tool(description="Echo a text back.")
    def echo(text: str) -> str:
        calls["echo"] += 1
        return f"echoed {text}"

    @server.tool(
        description="Look a word up (read-only).", annotations=ToolAnnotations(readOnlyHint=True)
    )
    def lookup(word: str) -> str:
        calls["lookup"] += 1
        return f"{word}: a word"

    @server.tool(description="Always fails.")
    def explode() -> str:
        calls["explode"] += 1
        raise ToolFailed("the tool blew up")

    @server.tool(description="Says which credentials the request carried (a careless server).")
    def whoami(ctx: Context) -> str:
        calls["whoami"] += 1
        return "you are " + " and ".join(_echoes(ctx))

    @server.tool(description="Refuses, quoting the credentials it was sent.")
    def guarded(ctx: Context) -> str:
        calls["guarded"] += 1
        raise ToolError("access denied for " + " and ".join(_echoes(ctx)))  # told the client

    @server.tool(description="Sleeps for ms milliseconds, then answers.")
    async def slow(ms: int) -> str:
        calls["slow"] += 1
        await asyncio.sleep(ms / 1000)
        calls["slow_done"] += 1
        return f"slept {ms}"


def _echoes(ctx: Context) -> list[str]:
    """The request's authorization and x-api-key headers as given, upper-cased, base64."""
    headers = ctx.headers or {}
    echoes = []
    for name in ("authorization", "x-api-key"):
        value = headers.get(name, "")
        if value:
            echoes += [value, value.upper(), base64.b64encode(value.encode()).decode()]
    return echoes


class McpTestServer:
    """Streamable HTTP at `url` (…/mcp) and SSE at `sse_url` (…/sse)."""

    __test__ = False

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._headers: list[dict[str, str]] = []
        self._servers: list[tuple[uvicorn.Server, threading.Thread]] = []
        self.url = ""
        self.sse_url = ""

    @property
    def headers(self) -> list[dict[str, str]]:
        """The headers of every HTTP request the server got, oldest first."""
        with self._lock:
            return list(self._headers)

    def reset(self) -> None:
        with self._lock:
            self._headers.clear()
        self.calls.clear()

    def _recording(self, app: App) -> App:
        async def recorded(scope: Scope, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                with self._lock:
                    self._headers.append(headers)
            await app(scope, receive, send)

        return recorded

    def start(self) -> Self:
        streamable = MCPServer("rapport-test-tools")
        _tools(streamable, self.calls)
        old_style = MCPServer("rapport-test-tools-sse")
        _tools(old_style, self.calls)
        port = self._serve(self._recording(streamable.streamable_http_app()), lifespan="on")
        self.url = f"http://127.0.0.1:{port}/mcp"
        port = self._serve(self._recording(old_style.sse_app()), lifespan="off")
        self.sse_url = f"http://127.0.0.1:{port}/sse"
        return self

    def _serve(self, app: App, lifespan: str) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        config = uvicorn.Config(
            app,
            lifespan=lifespan,
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=lambda: asyncio.run(server.serve([sock])), daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the MCP test server failed to start")
            time.sleep(0.005)
        self._servers.append((server, thread))
        return int(sock.getsockname()[1])

    def stop(self) -> None:
        for server, thread in self._servers:
            server.should_exit = True
            thread.join(timeout=5)
        self._servers.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # benchmarks run it as a process of its own
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url-file", required=True, help="where to write the two URLs")
    arguments = parser.parse_args()
    running = McpTestServer().start()
    with open(arguments.url_file, "w", encoding="utf-8") as urls:
        urls.write(f"{running.url}\n{running.sse_url}\n")
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    running.stop()
