"""The hosted tools of one response: built from the request's tool specs, offered to the model
under names that cannot clash, and closed when the run ends.

The registry (`_BUILDERS`) is the one place a tool type meets its implementation. Function
names: a hosted tool's function keeps its own name unless a client function or another hosted
function has it already; then it is offered as `<label>__<name>` and mapped back on the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import msgspec

from app.config import Settings
from app.errors import not_supported
from app.tools import hosts
from app.tools.base import AddItem, HostedTool
from app.tools.mcp import McpServer
from app.tools.web_search import WebSearch
from app.wire.hosted_tools import HostedToolSpec, McpTool, WebSearchTool
from app.wire.tools import FunctionTool, HostedChoice, ToolChoiceMcp

Builder = Callable[[Any, Settings, httpx.AsyncClient, Sequence[str]], HostedTool]


def _mcp(spec: McpTool, settings: Settings, _http: httpx.AsyncClient, _inc: Sequence[str]) -> Any:
    return McpServer(spec, settings.tool_timeout_seconds)


def _web_search(
    spec: WebSearchTool, settings: Settings, http: httpx.AsyncClient, include: Sequence[str]
) -> Any:
    return WebSearch(spec, settings, http, include)


# Every web search type (WEB_SEARCH_TYPES) decodes to a WebSearchTool, so one entry serves all.
_BUILDERS: dict[type, Builder] = {McpTool: _mcp, WebSearchTool: _web_search}


class Toolset:
    def __init__(self, tools: Sequence[HostedTool] = ()) -> None:
        self._tools = list(tools)
        self._names: dict[str, tuple[HostedTool, str]] = {}  # offered name → (tool, its name)

    def __bool__(self) -> bool:
        return bool(self._tools)

    async def prepare(self, context: list[dict[str, Any]], add_item: AddItem) -> None:
        for tool in self._tools:
            await tool.prepare(context, add_item)

    def offered(self, client_names: set[str]) -> list[FunctionTool]:
        """The hosted functions to offer next to the client's, each under a unique name."""
        taken = set(client_names)
        offered: list[FunctionTool] = []
        self._names = {}
        for index, tool in enumerate(self._tools):
            for function in tool.functions():
                name = function.name
                if name in taken:
                    name = f"{getattr(tool, 'label', f'tool{index}')}__{function.name}"[:128]
                taken.add(name)
                self._names[name] = (tool, function.name)
                offered.append(msgspec.structs.replace(function, name=name))
        return offered

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._names)

    def owner(self, offered_name: str) -> tuple[HostedTool, str] | None:
        return self._names.get(offered_name)

    def chosen(self, choice: HostedChoice) -> list[str]:
        """The offered names a hosted `tool_choice` points at: one MCP server's tools (or the
        one it names), or the search tool's."""
        names = []
        for offered, (tool, own_name) in self._names.items():
            if isinstance(choice, ToolChoiceMcp):
                if not isinstance(tool, McpServer) or tool.label != choice.server_label:
                    continue
                if choice.name is not None and own_name != choice.name:
                    continue
            elif isinstance(tool, McpServer):
                continue
            names.append(offered)
        return names

    def server(self, label: str) -> McpServer | None:
        for tool in self._tools:
            if isinstance(tool, McpServer) and tool.label == label:
                return tool
        return None

    def credentials(self) -> list[str]:
        """The secrets the caller gave these tools (MCP headers and authorization), which
        nothing Rapport relays, stores or logs may show."""
        return [value for tool in self._tools for value in getattr(tool, "credentials", ())]

    def annotate(self, text: str) -> list[dict[str, Any]]:
        return [note for tool in self._tools for note in tool.annotate(text)]

    async def aclose(self) -> None:
        for tool in self._tools:
            await tool.aclose()

    def close_soon(self) -> None:
        """Close the tools' connections after the run, without making the client wait for it
        (ending an MCP session is a round trip of its own: ≈ 17 ms on loopback)."""
        if not self._tools:
            return
        task = asyncio.get_running_loop().create_task(self.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()  # closes under way, kept from the garbage collector


def build(
    specs: Sequence[tuple[int, HostedToolSpec]],
    settings: Settings,
    http: httpx.AsyncClient,
    include: Sequence[str] | None,
) -> Toolset:
    """The request's hosted tools (`specs`: each with its index in `tools`, for errors)."""
    tools = []
    for index, spec in specs:
        if isinstance(spec, WebSearchTool):
            WebSearch.check_backend(spec, settings, index)  # a 400 naming this tool's index
        builder = _BUILDERS.get(type(spec))
        if builder is None:
            raise not_supported(f"tools[{index}].type", f"The '{spec.type}' tool")
        tools.append(builder(spec, settings, http, include or ()))
    return Toolset(tools)


async def check_hosts(tools: Sequence[tuple[int, HostedToolSpec]], settings: Settings) -> None:
    """Every MCP server URL must be reachable without opening the operator's network."""
    for index, spec in tools:
        if isinstance(spec, McpTool) and spec.server_url is not None:
            await hosts.check_url(
                spec.server_url, settings.allowed_tool_hosts, param=f"tools[{index}].server_url"
            )
