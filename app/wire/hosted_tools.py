"""Hosted tool definitions of the create call: the tools Rapport runs itself (MCP, web search).

Decoded one by one from `tools` (app/responses/validation.py) by their `type`; unlike function
tools they never reach the upstream as themselves: the run loop offers them to the model as
functions and runs the calls (app/tools/). Their credentials (`headers`, `authorization`) are
never echoed: `echo` drops them, as OpenAI's wire does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

WEB_SEARCH_TYPES = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)

ServerLabel = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[a-zA-Z0-9_-]+$")]


class McpToolFilter(msgspec.Struct, forbid_unknown_fields=True):
    tool_names: list[str] | None = None
    read_only: bool | None = None


class McpApprovalFilter(msgspec.Struct, forbid_unknown_fields=True):
    always: McpToolFilter | None = None
    never: McpToolFilter | None = None


class McpTool(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: Literal["mcp"]
    server_label: ServerLabel
    server_url: str | None = None
    connector_id: str | None = None
    tunnel_id: str | None = None
    headers: dict[str, str] | None = None
    authorization: str | None = None
    allowed_tools: list[str] | McpToolFilter | None = None
    require_approval: Literal["always", "never"] | McpApprovalFilter | None = None
    server_description: str | None = None
    defer_loading: bool | None = None
    allowed_callers: list[Any] | None = None


class UserLocation(msgspec.Struct, kw_only=True):
    type: Literal["approximate"] = "approximate"
    city: str | None = None
    country: str | None = None
    region: str | None = None
    timezone: str | None = None


class SearchFilters(msgspec.Struct, forbid_unknown_fields=True):
    allowed_domains: list[str] | None = None


class WebSearchTool(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str  # one of WEB_SEARCH_TYPES (checked by the validation, which names the tool)
    search_context_size: Literal["low", "medium", "high"] | None = None
    user_location: UserLocation | None = None
    filters: SearchFilters | None = None
    external_web_access: bool | None = None
    search_content_types: list[str] | None = None


HostedToolSpec = McpTool | WebSearchTool


def echo(tool: HostedToolSpec) -> dict[str, Any]:
    """The tool as the Response shows it: every field as sent, credentials left out."""
    if isinstance(tool, McpTool):
        echoed = {
            "type": "mcp",
            "server_label": tool.server_label,
            "server_url": tool.server_url,
            "allowed_tools": msgspec.to_builtins(tool.allowed_tools),
            "headers": None,
            "require_approval": msgspec.to_builtins(tool.require_approval or "always"),
        }
        if tool.server_description is not None:  # a string or absent, never null
            echoed["server_description"] = tool.server_description
        return echoed
    return {
        "type": tool.type,
        "search_context_size": tool.search_context_size or "medium",
        "user_location": msgspec.to_builtins(tool.user_location),
        **({"filters": msgspec.to_builtins(tool.filters)} if tool.filters else {}),
    }
