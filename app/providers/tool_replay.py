"""The tool items of a history, replayed to a chat-completions upstream: every call as a call
of the function its tool is offered as now, every client-executed tool's output as the text
of a tool message. (Function and custom tool outputs are plain text already: translate.py.)"""

from __future__ import annotations

import json
from typing import Any

from app.providers import client_tools
from app.providers.catalog import CALL_KINDS, ToolCatalog, lenient_tools
from app.wire.tools import CustomTool, FunctionTool, NamespaceTool, Tool


def as_call(item: dict[str, Any], catalog: ToolCatalog) -> dict[str, Any]:
    """Any call item as `{call_id, name, arguments}`, named as its tool is offered now."""
    kind = item["type"]
    namespace = item.get("namespace")
    if kind == "function_call":
        name = catalog.upstream_name("function", item["name"], namespace)
        return {"call_id": item["call_id"], "name": name, "arguments": item["arguments"]}
    if kind == "custom_tool_call":
        name = catalog.upstream_name("custom", item["name"], namespace)
        arguments = json.dumps({"input": item["input"]})
        return {"call_id": item["call_id"], "name": name, "arguments": arguments}
    name = catalog.upstream_name(CALL_KINDS[kind], CALL_KINDS[kind])
    return {
        "call_id": item.get("call_id") or "",
        "name": name,
        "arguments": client_tools.call_arguments(item),
    }


def tool_message(item: dict[str, Any], catalog: ToolCatalog) -> dict[str, Any]:
    """A client-executed tool's output as a tool message; a search's names what it loaded."""
    loaded = [name for tool in lenient_tools(item.get("tools")) for name in _names(tool, catalog)]
    content = client_tools.output_text(item, loaded)
    return {"role": "tool", "tool_call_id": item.get("call_id") or "", "content": content}


def _names(tool: Tool, catalog: ToolCatalog) -> list[str]:
    """The upstream names a loaded tool is offered under."""
    if isinstance(tool, NamespaceTool):
        return [catalog.upstream_name("function", m.name, tool.name) for m in tool.tools]
    if isinstance(tool, FunctionTool | CustomTool):
        return [catalog.upstream_name("function", tool.name)]
    return []
