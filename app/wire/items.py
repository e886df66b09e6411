"""Input items as clients send them, and the stored form every item takes once it has an id.

`input` arrives as a list of JSON objects and is converted one item at a time, because OpenAI's
"easy" message may omit its `type` tag (msgspec's tagged unions need the tag) and because a
failure must name the item (`input[3].content[0].text`) in OpenAI's `param`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app import ids
from app.wire import tool_items
from app.wire.common import CallId, ItemStatus, ToolName
from app.wire.content import (
    MAX_TEXT,
    InputContent,
    MessageContent,
    OutputText,
    ReasoningText,
    Refusal,
    SummaryText,
)


class Message(msgspec.Struct, tag="message", tag_field="type"):
    role: Literal["user", "assistant", "system", "developer"]
    content: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | list[MessageContent]
    id: str | None = None
    status: ItemStatus | None = None
    phase: Literal["commentary", "final_answer"] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.content, str):
            return
        assistant = self.role == "assistant"
        for part in self.content:
            if isinstance(part, OutputText | Refusal) != assistant:
                kind = (
                    "output_text or refusal"
                    if assistant
                    else "input_text, input_image or input_file"
                )
                article = "an" if self.role[0] in "aeiou" else "a"
                raise ValueError(f"{article} {self.role} message takes {kind} content parts")


class FunctionCall(msgspec.Struct, tag="function_call", tag_field="type"):
    call_id: CallId
    name: ToolName
    arguments: str
    id: str | None = None
    status: ItemStatus | None = None
    namespace: str | None = None


class FunctionCallOutput(msgspec.Struct, tag="function_call_output", tag_field="type"):
    call_id: CallId
    output: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | list[InputContent]
    id: str | None = None
    status: ItemStatus | None = None


class Reasoning(msgspec.Struct, tag="reasoning", tag_field="type"):
    summary: list[SummaryText] = msgspec.field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    id: str | None = None
    status: ItemStatus | None = None


class CustomToolCall(msgspec.Struct, tag="custom_tool_call", tag_field="type"):
    call_id: CallId
    name: ToolName
    input: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
    id: str | None = None
    status: ItemStatus | None = None
    namespace: str | None = None


class CustomToolCallOutput(msgspec.Struct, tag="custom_tool_call_output", tag_field="type"):
    call_id: CallId
    output: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | list[InputContent]
    id: str | None = None


class Compaction(msgspec.Struct, tag="compaction", tag_field="type"):
    """A summary Rapport made (app/context/compaction.py), handed back by a client."""

    encrypted_content: Annotated[str, msgspec.Meta(max_length=20_971_520)]
    id: str | None = None


class McpApprovalResponse(msgspec.Struct, tag="mcp_approval_response", tag_field="type"):
    """The client's answer to an `mcp_approval_request` (app/tools/approvals.py)."""

    approval_request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    approve: bool
    reason: str | None = None
    id: str | None = None


class McpApprovalRequest(msgspec.Struct, tag="mcp_approval_request", tag_field="type"):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    server_label: str
    name: str
    arguments: str


class McpCall(msgspec.Struct, tag="mcp_call", tag_field="type"):
    server_label: str
    name: str
    arguments: str
    id: str | None = None
    output: str | None = None
    error: Any = None
    status: str | None = None
    approval_request_id: str | None = None


class McpListTools(msgspec.Struct, tag="mcp_list_tools", tag_field="type"):
    server_label: str
    tools: list[dict[str, Any]]
    id: str | None = None
    error: str | None = None


class WebSearchCall(msgspec.Struct, tag="web_search_call", tag_field="type"):
    action: dict[str, Any]
    id: str | None = None
    status: str | None = None


# Hosted tools' items, replayed as input: stored as sent, under a fresh id like every item
# (an approval answer replayed with its request is re-pointed: app/tools/approvals.py).
HOSTED_ITEMS = (McpApprovalResponse, McpApprovalRequest, McpCall, McpListTools, WebSearchCall)


class ItemReference(msgspec.Struct, tag="item_reference", tag_field="type"):
    """A stored item named by id, standing in for itself (app/responses/references.py)."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


InputItem = (
    Message
    | FunctionCall
    | FunctionCallOutput
    | Reasoning
    | Compaction
    | CustomToolCall
    | CustomToolCallOutput
    | ItemReference
    | McpApprovalResponse
    | McpApprovalRequest
    | McpCall
    | McpListTools
    | WebSearchCall
    | tool_items.ToolItem
)

SUPPORTED_INPUT_TYPES = [
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "compaction",
    "custom_tool_call",
    "custom_tool_call_output",
    "item_reference",
    "mcp_approval_response",
    "mcp_approval_request",
    "mcp_call",
    "mcp_list_tools",
    "web_search_call",
    *tool_items.TOOL_ITEM_TYPES,
]
# Item types OpenAI accepts as input that belong to tools or features Rapport does not run yet.
KNOWN_UNSUPPORTED_INPUT_TYPES = frozenset(
    {
        "compaction_trigger",
        "file_search_call",
        "image_generation_call",
        "code_interpreter_call",
        "program",
        "program_output",
    }
)

# Every item that asks a client to run a tool, and every item that answers one by `call_id`.
CALL_TYPES = frozenset({"function_call", "custom_tool_call", *tool_items.CALL_TYPES})
OUTPUT_TYPES = frozenset(
    {"function_call_output", "custom_tool_call_output", *tool_items.OUTPUT_TYPES}
)

_ID_PREFIX = {
    "message": ids.MESSAGE,
    "function_call": ids.FUNCTION_CALL,
    "function_call_output": ids.FUNCTION_CALL_OUTPUT,
    "reasoning": ids.REASONING,
    "compaction": ids.COMPACTION,
    "custom_tool_call": ids.CUSTOM_TOOL_CALL,
    "custom_tool_call_output": ids.CUSTOM_TOOL_CALL_OUTPUT,
    "mcp_approval_response": ids.MCP_APPROVAL_RESPONSE,
    "mcp_approval_request": ids.MCP_APPROVAL_REQUEST,
    "mcp_call": ids.MCP_CALL,
    "mcp_list_tools": ids.MCP_LIST_TOOLS,
    "web_search_call": ids.WEB_SEARCH_CALL,
}


def new_item_id(kind: str, like: str) -> str:
    """A fresh id with the prefix OpenAI uses for items of this type, else the prefix of `like`
    (an id of the same kind of item)."""
    prefix = _ID_PREFIX.get(kind) or tool_items.ID_PREFIXES.get(kind)
    return ids.new_id(prefix or like.split("_", 1)[0])


def item_type(item: InputItem) -> str:
    return type(item).__struct_config__.tag  # type: ignore[return-value]


def stored_body(item: InputItem) -> dict[str, Any]:
    """The item as Rapport stores and lists it: a fresh id, parts for string content, and the
    status the server assigns (`completed`), whatever status the client sent.

    The id a client sent (say, a replayed `msg_…`) is not kept: an item is stored once, under
    an id of ours, so replaying an earlier output creates a new input item rather than a clash.
    """
    kind = item_type(item)
    if isinstance(item, tool_items.ToolItem):
        return tool_items.stored_body(item)
    if isinstance(item, ItemReference):
        return {"type": kind, "id": item.id}  # resolved against the store before use
    if isinstance(item, HOSTED_ITEMS):
        sent = msgspec.to_builtins(item)
        sent.pop("id", None)
        return {"id": ids.new_id(_ID_PREFIX[kind]), "type": kind, **sent}
    body: dict[str, Any] = {"id": ids.new_id(_ID_PREFIX[kind]), "type": kind}
    if isinstance(item, Message):
        body["role"] = item.role
        if isinstance(item.content, str):
            part = "output_text" if item.role == "assistant" else "input_text"
            extra: dict[str, list[Any]] = (
                {"annotations": [], "logprobs": []} if item.role == "assistant" else {}
            )
            body["content"] = [{"type": part, "text": item.content, **extra}]
        else:
            body["content"] = msgspec.to_builtins(item.content)
        body["status"] = "completed"
        if item.phase is not None:
            body["phase"] = item.phase
    elif isinstance(item, FunctionCall):
        body.update(status="completed", arguments=item.arguments)
        body.update(call_id=item.call_id, name=item.name)
        if item.namespace is not None:
            body["namespace"] = item.namespace
    elif isinstance(item, FunctionCallOutput):
        body.update(call_id=item.call_id, output=msgspec.to_builtins(item.output))
        body["status"] = "completed"
    elif isinstance(item, Compaction):
        body["encrypted_content"] = item.encrypted_content
    elif isinstance(item, CustomToolCall):
        body.update(status="completed", call_id=item.call_id, name=item.name, input=item.input)
        if item.namespace is not None:
            body["namespace"] = item.namespace
    elif isinstance(item, CustomToolCallOutput):
        body.update(call_id=item.call_id, output=msgspec.to_builtins(item.output))
    else:
        body["summary"] = msgspec.to_builtins(item.summary)
        if item.content is not None:
            body["content"] = msgspec.to_builtins(item.content)
        if item.encrypted_content is not None:
            body["encrypted_content"] = item.encrypted_content
    return body
