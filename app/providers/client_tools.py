"""Client-executed tools over chat-completions: each offered as a function with a schema of its
action, the function's call turned back into the tool's own call item, and the items of the
history (calls and their outputs) replayed as assistant tool calls and tool messages.

A model that answers with arguments that do not fit the schema still gets its call through
(`command: []`, a missing path as ""): the client is the one that runs it and reports what
went wrong, as it would for a function with bad arguments.
"""

from __future__ import annotations

import json
from typing import Any

from app import ids
from app.providers.catalog import Entry
from app.wire.client_tools import ComputerUsePreviewTool, ShellTool, ToolSearchTool
from app.wire.tool_items import ID_PREFIXES

_STRING = {"type": "string"}
_INTEGER = {"type": "integer"}
_STRINGS = {"type": "array", "items": _STRING}
_COMPUTER_ACTION = {
    "type": "object",
    "properties": {
        "type": {
            "type": "string",
            "enum": [
                "click",
                "double_click",
                "drag",
                "keypress",
                "move",
                "screenshot",
                "scroll",
                "type",
                "wait",
            ],
        },
        "x": _INTEGER,
        "y": _INTEGER,
        "button": {"type": "string", "enum": ["left", "right", "wheel", "back", "forward"]},
        "keys": _STRINGS,
        "path": {
            "type": "array",
            "items": {"type": "object", "properties": {"x": _INTEGER, "y": _INTEGER}},
        },
        "scroll_x": _INTEGER,
        "scroll_y": _INTEGER,
        "text": _STRING,
    },
    "required": ["type"],
}
_SEARCH_PARAMETERS = {
    "type": "object",
    "properties": {"query": _STRING, "limit": _INTEGER},
    "required": ["query"],
}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def function_for(entry: Entry) -> dict[str, Any]:
    """The chat-completions `function` a client-executed tool is offered as."""
    tool = entry.tool
    if entry.kind == "local_shell":
        description = "Runs a command on the user's machine and returns its output."
        parameters = _object(
            {
                "command": {
                    **_STRINGS,
                    "description": 'The program and its arguments, e.g. ["ls", "-la"].',
                },
                "working_directory": _STRING,
                "timeout_ms": _INTEGER,
                "env": {"type": "object", "additionalProperties": _STRING},
                "user": _STRING,
            },
            ["command"],
        )
    elif entry.kind == "shell":
        description = (
            "Runs shell commands, in order, in the user's environment, and returns the stdout, "
            "stderr and exit code of each."
        )
        parameters = _object(
            {"commands": _STRINGS, "timeout_ms": _INTEGER, "max_output_length": _INTEGER},
            ["commands"],
        )
    elif entry.kind == "apply_patch":
        description = (
            "Creates, updates or deletes one file. `diff` is a unified diff of the change; for "
            "create_file, the new file's lines each prefixed with '+'."
        )
        operation = {"type": "string", "enum": ["create_file", "update_file", "delete_file"]}
        parameters = _object(
            {"operation": operation, "path": _STRING, "diff": _STRING}, ["operation", "path"]
        )
    elif entry.kind == "computer":
        description = "Acts on the user's computer screen; a screenshot of the result comes back."
        if isinstance(tool, ComputerUsePreviewTool):
            description += (
                f" The display is {tool.display_width}x{tool.display_height} pixels, "
                f"environment {tool.environment}."
            )
            parameters = _object({"action": _COMPUTER_ACTION}, ["action"])
        else:
            parameters = _object(
                {"actions": {"type": "array", "items": _COMPUTER_ACTION}}, ["actions"]
            )
    else:
        search: ToolSearchTool = tool
        description = search.description or "Searches for tools to load for the next step."
        parameters = search.parameters or _SEARCH_PARAMETERS
    return {"name": entry.upstream, "description": description, "parameters": parameters}


def call_item(entry: Entry, call_id: str, arguments: str, status: str) -> dict[str, Any]:
    """The item of one upstream call to a client-executed tool."""
    args = _decoded(arguments)
    kind = entry.kind
    item: dict[str, Any]
    if kind == "local_shell":
        action = {
            "type": "exec",
            "command": _strings(args.get("command")),
            "env": {k: str(v) for k, v in (args.get("env") or {}).items()}
            if isinstance(args.get("env"), dict)
            else {},
            "timeout_ms": _int(args.get("timeout_ms")),
            "user": _str_or_none(args.get("user")),
            "working_directory": _str_or_none(args.get("working_directory")),
        }
        item = _new("local_shell_call", status, call_id, action=action)
    elif kind == "shell":
        action = {
            "commands": _strings(args.get("commands")),
            "timeout_ms": _int(args.get("timeout_ms")),
            "max_output_length": _int(args.get("max_output_length")),
        }
        shell: ShellTool = entry.tool
        item = _new("shell_call", status, call_id, action=action, environment=shell.environment)
    elif kind == "apply_patch":
        operation = args.get("operation") or args.get("type")
        if operation not in ("create_file", "update_file", "delete_file"):
            operation = "update_file"
        patch: dict[str, Any] = {"type": operation, "path": str(args.get("path") or "")}
        if operation != "delete_file":
            patch["diff"] = str(args.get("diff") or "")
        # Its status has no `incomplete`: a call the model did not finish never completed.
        patch_status = "completed" if status == "completed" else "in_progress"
        item = _new("apply_patch_call", patch_status, call_id, operation=patch)
    elif kind == "computer":
        actions = [a for a in (args.get("actions") or []) if isinstance(a, dict)]
        single = args.get("action")
        fields = (
            {"action": single if isinstance(single, dict) else {"type": "screenshot"}}
            if isinstance(entry.tool, ComputerUsePreviewTool)
            else {"actions": actions or ([single] if isinstance(single, dict) else [])}
        )
        item = _new("computer_call", status, call_id, **fields, pending_safety_checks=[])
    else:
        item = _new("tool_search_call", status, call_id, execution="client", arguments=args)
    return item


def _new(kind: str, status: str, call_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": ids.new_id(ID_PREFIXES[kind]),
        "type": kind,
        "status": status,
        "call_id": call_id,
        **fields,
    }


def call_arguments(item: dict[str, Any]) -> str:
    """A stored call's arguments as the function it was offered as takes them."""
    kind = item["type"]
    if kind == "local_shell_call":
        action = item.get("action") or {}
        args = {
            key: action.get(key)
            for key in ("command", "working_directory", "timeout_ms", "env", "user")
        }
    elif kind == "shell_call":
        args = dict(item.get("action") or {})
    elif kind == "apply_patch_call":
        operation = dict(item.get("operation") or {})
        args = {"operation": operation.pop("type", None), **operation}
    elif kind == "computer_call":
        args = {key: item[key] for key in ("action", "actions") if item.get(key) is not None}
    else:
        raw = item.get("arguments")
        return raw if isinstance(raw, str) else json.dumps(raw)
    return json.dumps({key: value for key, value in args.items() if value is not None})


def output_text(item: dict[str, Any], loaded_names: list[str] | None = None) -> str:
    """What a client-executed tool's output says to the model, as a tool message's text."""
    kind = item["type"]
    if kind == "local_shell_call_output":
        return str(item.get("output") or "")
    if kind == "shell_call_output":
        return json.dumps(item.get("output") or [])
    if kind == "apply_patch_call_output":
        text = item.get("output")
        return f"{item.get('status', 'completed')}: {text}" if text else str(item.get("status"))
    if kind == "computer_call_output":
        return "The screenshot taken after the action follows."
    names = ", ".join(loaded_names or []) or "none"
    return f"Tools loaded for the next step: {names}."


def screenshot_part(item: dict[str, Any]) -> dict[str, Any] | None:
    """A computer call's screenshot as a chat image part (tool messages carry text only)."""
    output = item.get("output") or {}
    url = output.get("image_url") or output.get("file_id")
    return {"type": "image_url", "image_url": {"url": url}} if url else None


def _decoded(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(part) for part in value] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
