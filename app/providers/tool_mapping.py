"""Tools between the two APIs: Responses tool definitions and choices → chat-completions
`tools`/`tool_choice`, and upstream `tool_calls` → the Responses call items.

Every tool is offered under the name its catalog gives it (`providers/catalog.py`: namespaced
functions flattened, client-executed tool types as functions), and a call comes back as the
item of the tool that name maps to: `function_call` (with its `namespace`), `custom_tool_call`,
or a client-executed tool's call (`providers/client_tools.py`).

Custom tools (free text, optionally constrained by a grammar) have no chat-completions
counterpart, so they travel as functions of one string argument, `input`, and come back as
`custom_tool_call` items carrying that string.
"""

from __future__ import annotations

import json
from typing import Any

from app import ids
from app.providers import client_tools
from app.providers.base import GenerationRequest
from app.providers.catalog import Entry, ToolCatalog
from app.wire.tools import (
    CustomTool,
    ToolChoiceAllowed,
    ToolChoiceCustom,
    ToolChoiceFunction,
)


def add_tools(body: dict[str, Any], request: GenerationRequest, catalog: ToolCatalog) -> None:
    params = request.params
    if catalog:
        body["tools"] = [
            {"type": "function", "function": chat_function(e)} for e in catalog.entries
        ]
        if params.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = params.parallel_tool_calls
    choice = params.tool_choice
    if isinstance(choice, str):
        body["tool_choice"] = choice
    elif isinstance(choice, ToolChoiceFunction | ToolChoiceCustom):  # custom tools are functions
        named = catalog.named(choice.name)
        name = named.upstream if named is not None else choice.name
        body["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif isinstance(choice, ToolChoiceAllowed):
        allowed = [
            {"type": "function", "function": {"name": _allowed_name(tool, catalog)}}
            for tool in choice.tools
        ]
        body["tool_choice"] = {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.mode, "tools": allowed},
        }


def _allowed_name(tool: dict[str, Any], catalog: ToolCatalog) -> Any:
    name = tool.get("name")
    named = catalog.named(name) if isinstance(name, str) else None
    return named.upstream if named is not None else name


def chat_function(entry: Entry) -> dict[str, Any]:
    """The `function` one catalog entry is offered as."""
    if entry.kind == "custom":
        function = custom_as_function(entry.tool, entry.upstream)
    elif entry.kind == "function":
        tool = entry.tool
        fields = (
            ("name", entry.upstream),
            ("description", tool.description),
            ("parameters", tool.parameters),
            ("strict", tool.strict),
        )
        function = {k: v for k, v in fields if v is not None}
    else:
        return client_tools.function_for(entry)
    if entry.namespace_description:
        about = f"Part of {entry.namespace}: {entry.namespace_description}"
        text = function.get("description")
        function["description"] = f"{text}\n\n{about}" if text else about
    return function


def custom_as_function(tool: CustomTool, name: str | None = None) -> dict[str, Any]:
    """A custom tool as a function of one string, `input`; its format (a grammar or regex the
    upstream cannot enforce) is described to the model instead."""
    description = tool.description or ""
    form = tool.format or {}
    if form.get("definition"):
        syntax = form.get("syntax", "grammar")
        description += f"\nThe input must match this {syntax}:\n{form['definition']}"
    function: dict[str, Any] = {
        "name": name or tool.name,
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string"}},
            "required": ["input"],
            "additionalProperties": False,
        },
    }
    if description.strip():
        function["description"] = description.strip()
    return function


def custom_input(arguments: str) -> str:
    """The free text of a custom call, from the one-argument function call that carried it."""
    try:
        decoded = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(decoded, dict) and isinstance(decoded.get("input"), str):
        return str(decoded["input"])
    return arguments


# OpenAI's limit on a call_id sent back as input (app/wire/items.py, CallId).
MAX_CALL_ID = 64


def usable_call_id(raw: object) -> str:
    """The upstream's call id, or a fresh one where a client could not send it back: missing,
    or longer than OpenAI accepts (llama-cpp-python builds ids from the function name and a
    UUID, 50 characters plus the name). The upstream never needs its own id again: Rapport
    rebuilds the assistant turn and its tool results from the stored items, under one id."""
    if isinstance(raw, str) and 0 < len(raw) <= MAX_CALL_ID:
        return raw
    return ids.new_id("call")


def custom_tool_call_item(
    call_id: str, name: str, text: str, status: str, namespace: str | None = None
) -> dict[str, Any]:
    item = {
        "id": ids.new_id(ids.CUSTOM_TOOL_CALL),
        "type": "custom_tool_call",
        "status": status,
        "call_id": usable_call_id(call_id),
        "name": name,
        "input": text,
    }
    if namespace is not None:
        item["namespace"] = namespace
    return item


def function_call_item(
    call: dict[str, Any], status: str, entry: Entry | None = None
) -> dict[str, Any]:
    """A call of a function; `entry` (when the name is known) gives its own name and namespace."""
    function = call.get("function") or {}
    item = {
        "id": ids.new_id(ids.FUNCTION_CALL),
        "type": "function_call",
        "status": status,
        "arguments": function.get("arguments") or "",
        "call_id": usable_call_id(call.get("id")),
        "name": entry.name if entry is not None else function.get("name") or "",
    }
    if entry is not None and entry.namespace is not None:
        item["namespace"] = entry.namespace
    return item


def call_item(call: dict[str, Any], catalog: ToolCatalog, status: str) -> dict[str, Any]:
    """One upstream tool call as the item of the tool its name maps to."""
    function = call.get("function") or {}
    entry = catalog.entry(function.get("name"))
    arguments = function.get("arguments") or ""
    if entry is None or entry.kind == "function":
        return function_call_item(call, status, entry)
    if entry.kind == "custom":
        text = custom_input(arguments)
        return custom_tool_call_item(call.get("id", ""), entry.name, text, status, entry.namespace)
    return client_tools.call_item(entry, usable_call_id(call.get("id")), arguments, status)


def call_items(
    calls: list[dict[str, Any]], catalog: ToolCatalog, status: str
) -> list[dict[str, Any]]:
    """A chat answer's `tool_calls` as output items."""
    return [call_item(call, catalog, status) for call in calls]
