"""An MCP server as a hosted tool: its tools listed once, offered as functions, called for the
model, with OpenAI's approvals.

Listing: an `mcp_list_tools` item the first time a chain or conversation uses the server; later
turns find that item in their context and do not list again (while it is in the window).
`allowed_tools` narrows what is listed and offered. Calls: `require_approval` (OpenAI's default
is "always") turns a call into an `mcp_approval_request` item that ends the response; the
client's `mcp_approval_response` (app/tools/approvals.py) runs or refuses it on the next turn.
A failed call is a result, not a fault: its `mcp_call` item carries the error and the model is
told, so it can answer or try again.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from app import ids
from app.tools.base import AddItem, ItemEvents, Opened
from app.tools.mcp_connection import McpConnection, McpUnavailable
from app.wire.hosted_tools import McpApprovalFilter, McpTool, McpToolFilter
from app.wire.tools import FunctionTool

# MCP's JSON-RPC code for a request the client gave up on (the SDK's REQUEST_TIMEOUT).
_TIMED_OUT = -32001


class McpServer:
    def __init__(self, spec: McpTool, timeout: float) -> None:
        self.label = spec.server_label
        self._spec = spec
        self._timeout = timeout
        headers = dict(spec.headers or {})
        if spec.authorization:
            headers["Authorization"] = f"Bearer {spec.authorization}"
        self._connection = McpConnection(spec.server_url or "", headers, timeout)
        self._tools: list[dict[str, Any]] = []
        self.credentials = _credentials(headers)

    def functions(self) -> list[FunctionTool]:
        return [
            FunctionTool(
                name=tool["name"],
                description=tool.get("description") or None,
                parameters=tool.get("input_schema") or {"type": "object", "properties": {}},
                strict=False,
            )
            for tool in self._tools
        ]

    async def prepare(self, context: list[dict[str, Any]], add_item: AddItem) -> None:
        listed = _last_listing(context, self.label)
        if listed is not None:
            self._tools = self._allowed(listed["tools"])
            return
        item: dict[str, Any] = {
            "id": ids.new_id(ids.MCP_LIST_TOOLS),
            "type": "mcp_list_tools",
            "server_label": self.label,
            "tools": [],
        }

        async def fill(events: ItemEvents) -> None:
            events.emit("response.mcp_list_tools.in_progress")
            try:
                item["tools"] = self._tools = self._allowed(await self._list())
            except McpUnavailable as exc:
                item["error"] = str(exc)
                events.emit("response.mcp_list_tools.failed")
                return
            events.emit("response.mcp_list_tools.completed")

        await add_item(item, fill)

    async def _list(self) -> list[dict[str, Any]]:
        client = await self._connection.client()
        try:
            async with asyncio.timeout(self._timeout):
                listing = await client.list_tools()
        except TimeoutError:
            raise McpUnavailable(
                f"The MCP server did not list its tools within {self._timeout:g} s."
            ) from None
        except Exception as exc:  # noqa: BLE001  (any protocol failure is the listing's error)
            raise McpUnavailable(
                f"The MCP server could not list its tools ({type(exc).__name__})."
            ) from None
        return [
            {
                "name": tool.name,
                "input_schema": tool.input_schema,
                "description": tool.description,
                "annotations": tool.annotations.model_dump(by_alias=True, exclude_none=True)
                if tool.annotations is not None
                else None,
            }
            for tool in listing.tools
        ]

    def _allowed(self, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        allowed = self._spec.allowed_tools
        if allowed is None:
            return tools
        if isinstance(allowed, list):
            return [tool for tool in tools if tool["name"] in allowed]
        return [tool for tool in tools if _matches(allowed, tool)]

    def open(self, name: str, arguments: str) -> Opened:
        if self._needs_approval(name):
            request = {
                "id": ids.new_id(ids.MCP_APPROVAL_REQUEST),
                "type": "mcp_approval_request",
                "server_label": self.label,
                "name": name,
                "arguments": arguments,
            }
            return Opened(request, runs=False)
        return Opened(self.call_item(name, arguments))

    def call_item(
        self, name: str, arguments: str, approval_request_id: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": ids.new_id(ids.MCP_CALL),
            "type": "mcp_call",
            "status": "in_progress",
            "server_label": self.label,
            "name": name,
            "arguments": arguments,
            "output": None,
            "error": None,
            "approval_request_id": approval_request_id,
        }

    def _needs_approval(self, name: str) -> bool:
        policy = self._spec.require_approval
        if policy is None or policy == "always":
            return True
        if policy == "never":
            return False
        tool = next((tool for tool in self._tools if tool["name"] == name), {"name": name})
        return _approval_needed(policy, tool)

    async def run(self, item: dict[str, Any], events: ItemEvents) -> str:
        events.emit("response.mcp_call_arguments.delta", delta=item["arguments"])
        events.emit("response.mcp_call_arguments.done", arguments=item["arguments"])
        events.emit("response.mcp_call.in_progress")
        output, error = await self._call(item["name"], item["arguments"])
        item["output"], item["error"] = output, error
        item["status"] = "failed" if error is not None else "completed"
        events.emit(
            "response.mcp_call.failed" if error is not None else "response.mcp_call.completed"
        )
        if error is not None:
            return f"The tool call failed: {_error_text(error)}"
        return output or ""

    async def _call(self, name: str, arguments: str) -> tuple[str | None, dict[str, Any] | None]:
        try:
            decoded = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            message = "The arguments are not a JSON object."
            return None, {"type": "mcp_protocol_error", "code": -32602, "message": message}
        try:
            client = await self._connection.client()
            async with asyncio.timeout(self._timeout):
                result = await client.call_tool(name, decoded)
        except McpUnavailable as exc:
            return None, {"type": "http_error", "code": 502, "message": str(exc)}
        except TimeoutError:
            message = f"The MCP server did not answer within {self._timeout:g} s."
            return None, {"type": "mcp_protocol_error", "code": _TIMED_OUT, "message": message}
        except Exception as exc:  # noqa: BLE001  (the server's refusal is the call's result)
            code = getattr(getattr(exc, "error", None), "code", -32603)
            message = getattr(getattr(exc, "error", None), "message", None) or type(exc).__name__
            return None, {"type": "mcp_protocol_error", "code": code, "message": message}
        text = _text_of(result.content)
        if result.is_error:
            content = [block.model_dump(exclude_none=True) for block in result.content]
            return None, {"type": "mcp_tool_execution_error", "content": content}
        if not text and result.structured_content is not None:
            text = json.dumps(result.structured_content)
        return text, None

    def annotate(self, text: str) -> list[dict[str, Any]]:
        return []

    async def aclose(self) -> None:
        await self._connection.aclose()


def _credentials(headers: dict[str, str]) -> list[str]:
    """What this server's caller entrusted to it: every header value, and the token of one
    written `<scheme> <token>`, which an echo may quote without its scheme."""
    values = []
    for value in headers.values():
        values.append(value)
        scheme, _, token = value.partition(" ")
        if token and scheme.isalpha():
            values.append(token.strip())
    return values


def _last_listing(context: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    for item in reversed(context):
        if (
            item.get("type") == "mcp_list_tools"
            and item.get("server_label") == label
            and not item.get("error")
        ):
            return dict(item)
    return None


def _matches(selector: McpToolFilter, tool: dict[str, Any]) -> bool:
    if selector.tool_names is not None and tool["name"] not in selector.tool_names:
        return False
    if selector.read_only is not None:
        read_only = bool((tool.get("annotations") or {}).get("readOnlyHint"))
        return read_only == selector.read_only
    return True


def _approval_needed(policy: McpApprovalFilter, tool: dict[str, Any]) -> bool:
    """A tool the `never` filter names runs unasked; anything else waits for approval, as a
    tool neither filter names does at OpenAI (the default policy is "always")."""
    if policy.always is not None and _matches(policy.always, tool):
        return True
    return not (policy.never is not None and _matches(policy.never, tool))


def _text_of(content: list[Any]) -> str:
    parts = [getattr(block, "text", None) for block in content]
    return "\n".join(part for part in parts if isinstance(part, str))


def _error_text(error: dict[str, Any]) -> str:
    if error.get("type") == "mcp_tool_execution_error":
        texts = [block.get("text", "") for block in error.get("content", [])]
        return " ".join(text for text in texts if text) or "the tool reported an error."
    return str(error.get("message", "unknown error"))
