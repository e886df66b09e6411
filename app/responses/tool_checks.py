"""Checks of the tool types beyond plain functions: namespaces and client-executed tools.

Kept beside `validation.py` (which calls them from `parse_tools`) so that the checks of the
tool types Rapport offers through functions live in one place.
"""

from __future__ import annotations

from typing import Any

from app.errors import InvalidRequest
from app.providers.registry import ProviderRegistry
from app.wire import codec
from app.wire.client_tools import CLIENT_TOOL_TYPES
from app.wire.tools import CustomTool, FunctionTool, NamespaceTool, Tool

TOOL_TYPES = ["namespace", *sorted(CLIENT_TOOL_TYPES)]


def parse_namespace(value: dict[str, Any], at: str) -> NamespaceTool:
    namespace = codec.convert(value, NamespaceTool, at=at)
    names = [member.name for member in namespace.tools]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise InvalidRequest(
                f"Duplicate tool name in namespace '{namespace.name}': '{name}'.",
                param=f"{at}.tools[{index}].name",
                code="invalid_value",
            )
    return namespace


def check_unique(tools: list[Tool], param: str) -> None:
    """One function per name, one namespace per name, one tool of each client-executed type."""
    seen: set[tuple[str, str]] = set()
    for index, tool in enumerate(tools):
        key, field = _identity(tool)
        if key in seen:
            what = f"tool name: '{key[1]}'" if field else f"tool type: '{key[1]}'"
            raise InvalidRequest(
                f"Duplicate {what}.",
                param=f"{param}[{index}].{field or 'type'}",
                code="invalid_value",
            )
        seen.add(key)


def _identity(tool: Tool) -> tuple[tuple[str, str], str | None]:
    if isinstance(tool, FunctionTool | CustomTool):
        return ("function", tool.name), "name"
    if isinstance(tool, NamespaceTool):
        return ("namespace", tool.name), "name"
    kind = type(tool).__struct_config__.tag
    # `computer` and `computer_use_preview` are one screen: offered once.
    return ("client", "computer" if kind == "computer_use_preview" else str(kind)), None


def function_tools(tools: tuple[Tool, ...]) -> list[FunctionTool | CustomTool]:
    """The function and custom tools, namespaced ones included (what a tool_choice may name)."""
    found: list[FunctionTool | CustomTool] = []
    for tool in tools:
        if isinstance(tool, NamespaceTool):
            found += tool.tools
        elif isinstance(tool, FunctionTool | CustomTool):
            found.append(tool)
    return found


def dropped_tools(providers: ProviderRegistry, model: object) -> frozenset[str]:
    """The hosted tool types the model's route leaves out (its `drop_hosted_tools`), and those
    its upstream runs itself (`upstream_tools`: the provider sends them from the request)."""
    if not isinstance(model, str) or not model:
        return frozenset()  # no model: `prepare` refuses the request anyway
    route, _ = providers.resolve(model)
    return frozenset(route.drop_hosted_tools) | frozenset(route.upstream_tools)
