"""Tools between the two APIs: Responses tool definitions and choices → chat-completions
`tools`/`tool_choice`, and upstream `tool_calls` → `function_call`/`custom_tool_call` items.

Custom tools (free text, optionally constrained by a grammar) have no chat-completions
counterpart, so they travel as functions of one string argument, `input`, and come back as
`custom_tool_call` items carrying that string.
"""

from __future__ import annotations

import json
from typing import Any

from app import ids
from app.providers.base import GenerationRequest
from app.wire.tools import (
    CustomTool,
    Tool,
    ToolChoiceAllowed,
    ToolChoiceCustom,
    ToolChoiceFunction,
)


def add_tools(body: dict[str, Any], request: GenerationRequest) -> None:
    params = request.params
    tools = request.tools
    if tools:
        body["tools"] = [chat_tool(tool) for tool in tools]
        if params.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = params.parallel_tool_calls
    choice = params.tool_choice
    if isinstance(choice, str):
        body["tool_choice"] = choice
    elif isinstance(choice, ToolChoiceFunction | ToolChoiceCustom):  # custom tools are functions
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif isinstance(choice, ToolChoiceAllowed):
        allowed = [
            {"type": "function", "function": {"name": tool.get("name")}} for tool in choice.tools
        ]
        body["tool_choice"] = {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.mode, "tools": allowed},
        }


def chat_tool(tool: Tool) -> dict[str, Any]:
    if isinstance(tool, CustomTool):
        return {"type": "function", "function": custom_as_function(tool)}
    fields = (
        ("name", tool.name),
        ("description", tool.description),
        ("parameters", tool.parameters),
        ("strict", tool.strict),
    )
    return {"type": "function", "function": {k: v for k, v in fields if v is not None}}


def custom_as_function(tool: CustomTool) -> dict[str, Any]:
    """A custom tool as a function of one string, `input`; its format (a grammar or regex the
    upstream cannot enforce) is described to the model instead."""
    description = tool.description or ""
    form = tool.format or {}
    if form.get("definition"):
        syntax = form.get("syntax", "grammar")
        description += f"\nThe input must match this {syntax}:\n{form['definition']}"
    function: dict[str, Any] = {
        "name": tool.name,
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


def custom_names(tools: tuple[Tool, ...]) -> frozenset[str]:
    return frozenset(tool.name for tool in tools if isinstance(tool, CustomTool))


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


def custom_tool_call_item(call_id: str, name: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": ids.new_id(ids.CUSTOM_TOOL_CALL),
        "type": "custom_tool_call",
        "status": status,
        "call_id": usable_call_id(call_id),
        "name": name,
        "input": text,
    }


def function_call_item(call: dict[str, Any], status: str) -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "id": ids.new_id(ids.FUNCTION_CALL),
        "type": "function_call",
        "status": status,
        "arguments": function.get("arguments") or "",
        "call_id": usable_call_id(call.get("id")),
        "name": function.get("name") or "",
    }


def call_items(
    calls: list[dict[str, Any]], custom_names: frozenset[str], status: str
) -> list[dict[str, Any]]:
    """A chat answer's `tool_calls` as output items, custom tools' as `custom_tool_call`."""
    items: list[dict[str, Any]] = []
    for call in calls:
        function = call.get("function") or {}
        name = function.get("name")
        if name in custom_names:
            text = custom_input(function.get("arguments") or "")
            items.append(custom_tool_call_item(call.get("id", ""), name, text, status))
        else:
            items.append(function_call_item(call, status))
    return items
