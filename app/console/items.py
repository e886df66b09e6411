"""Stored items → what a person reads: each item with the results of its tool calls beside it.

Templates render one macro per item type (`templates/console/_items.html`); this module only
decides the grouping: a call and its output (paired by `call_id`, or an MCP approval request
and its answer) read as one entry when both are on the page, the output listed under its call
rather than on its own. Anything unpaired stays where it stands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

CALL_TYPES = frozenset(
    {
        "function_call",
        "custom_tool_call",
        "local_shell_call",
        "shell_call",
        "apply_patch_call",
        "computer_call",
        "tool_search_call",
    }
)
KNOWN_TYPES = CALL_TYPES | {
    "message",
    "reasoning",
    "compaction",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "web_search_call",
    "item_reference",
}


class ItemView(msgspec.Struct):
    body: dict[str, Any]
    type: str
    results: list[dict[str, Any]] = msgspec.field(default_factory=list)
    position: int | None = None

    @property
    def known(self) -> bool:
        return self.type in KNOWN_TYPES or self.type.endswith("_output")


def present(items: Iterable[tuple[int | None, dict[str, Any]]]) -> list[ItemView]:
    """(position, body) pairs in order → views, outputs folded under the calls they answer."""
    views = [ItemView(body=body, type=str(body.get("type", "")), position=at) for at, body in items]
    calls: dict[str, ItemView] = {}
    approvals: dict[str, ItemView] = {}
    for view in views:
        if view.type in CALL_TYPES and isinstance(view.body.get("call_id"), str):
            calls.setdefault(view.body["call_id"], view)
        elif view.type == "mcp_approval_request" and isinstance(view.body.get("id"), str):
            approvals.setdefault(view.body["id"], view)
    shown: list[ItemView] = []
    for view in views:
        owner = _owner(view, calls, approvals)
        if owner is None:
            shown.append(view)
        else:
            owner.results.append(view.body)
    return shown


def _owner(
    view: ItemView, calls: dict[str, ItemView], approvals: dict[str, ItemView]
) -> ItemView | None:
    if view.type.endswith("_output") and isinstance(view.body.get("call_id"), str):
        return calls.get(view.body["call_id"])
    if view.type == "mcp_approval_response":
        return approvals.get(str(view.body.get("approval_request_id")))
    return None


def parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as a list of parts: a plain string is one text part."""
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if isinstance(content, list):
        return [part for part in content if isinstance(part, dict)]
    return []


def pretty_arguments(arguments: Any) -> str:
    """Tool-call arguments are JSON in a string: shown indented when they parse, else as sent."""
    if not isinstance(arguments, str):
        return pretty_json(arguments)
    try:
        return pretty_json(json.loads(arguments))
    except ValueError:
        return arguments


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def text_of(output: Any) -> str:
    """A tool output as text: a string as it is, content parts by their text."""
    if isinstance(output, str):
        return output
    if isinstance(output, Sequence):
        texts = [str(part.get("text", "")) for part in output if isinstance(part, dict)]
        if any(texts):
            return "\n".join(texts)
    return pretty_json(output)
