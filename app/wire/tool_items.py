"""Input items of client-executed tools (their calls, replayed, and the outputs clients send
back), and of the tool definitions a conversation carries (`additional_tools`, tool search).

Each stores as OpenAI lists it: a fresh id of ours with the item's own prefix, and `completed`
unless the item's status is its outcome (an `apply_patch_call_output` that `failed`). One
exception to the wire shape: `local_shell_call_output` names its call by `id` on OpenAI's
wire, but every stored item gets an id of ours, so the stored body keeps the call's id as
`call_id` (and a client replaying such an item may send either).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app import ids
from app.wire.common import CallId, ItemStatus
from app.wire.content import MAX_TEXT

Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Execution = Literal["server", "client"]


class LocalShellAction(msgspec.Struct):
    command: list[str]
    type: Literal["exec"] = "exec"
    env: dict[str, str] = msgspec.field(default_factory=dict)
    timeout_ms: int | None = None
    user: str | None = None
    working_directory: str | None = None


class LocalShellCall(msgspec.Struct, tag="local_shell_call", tag_field="type"):
    call_id: CallId
    action: LocalShellAction
    id: str | None = None
    status: ItemStatus | None = None


class LocalShellCallOutput(msgspec.Struct, tag="local_shell_call_output", tag_field="type"):
    output: Text
    id: str | None = None  # on OpenAI's wire: the id of the call this answers
    call_id: CallId | None = None  # as Rapport lists it
    status: ItemStatus | None = None

    def __post_init__(self) -> None:
        if not (self.call_id or self.id):
            raise ValueError("a local_shell_call_output names its call by `id` (or `call_id`)")

    @property
    def answers(self) -> str:
        return self.call_id or self.id or ""


class ShellAction(msgspec.Struct):
    commands: list[str]
    timeout_ms: int | None = None
    max_output_length: int | None = None


class ShellCall(msgspec.Struct, tag="shell_call", tag_field="type"):
    call_id: CallId
    action: ShellAction
    id: str | None = None
    status: ItemStatus | None = None
    environment: dict[str, Any] | None = None


class ShellOutcome(msgspec.Struct, omit_defaults=True):
    type: Literal["exit", "timeout"]
    exit_code: int | None = None


class ShellOutputContent(msgspec.Struct, omit_defaults=True):
    stdout: Text
    stderr: Text
    outcome: ShellOutcome


class ShellCallOutput(msgspec.Struct, tag="shell_call_output", tag_field="type"):
    call_id: CallId
    output: list[ShellOutputContent]
    id: str | None = None
    status: ItemStatus | None = None
    max_output_length: int | None = None


class CreateFile(msgspec.Struct, tag="create_file", tag_field="type"):
    path: Annotated[str, msgspec.Meta(min_length=1)]
    diff: Text


class UpdateFile(msgspec.Struct, tag="update_file", tag_field="type"):
    path: Annotated[str, msgspec.Meta(min_length=1)]
    diff: Text


class DeleteFile(msgspec.Struct, tag="delete_file", tag_field="type"):
    path: Annotated[str, msgspec.Meta(min_length=1)]


class ApplyPatchCall(msgspec.Struct, tag="apply_patch_call", tag_field="type"):
    call_id: CallId
    operation: CreateFile | UpdateFile | DeleteFile
    status: Literal["in_progress", "completed"] | None = None
    id: str | None = None


class ApplyPatchCallOutput(msgspec.Struct, tag="apply_patch_call_output", tag_field="type"):
    call_id: CallId
    status: Literal["completed", "failed"]
    output: Text | None = None
    id: str | None = None


class ComputerCall(msgspec.Struct, tag="computer_call", tag_field="type"):
    call_id: CallId
    action: dict[str, Any] | None = None
    actions: list[dict[str, Any]] | None = None
    pending_safety_checks: list[dict[str, Any]] = msgspec.field(default_factory=list)
    id: str | None = None
    status: ItemStatus | None = None


class ComputerScreenshot(msgspec.Struct, omit_defaults=True):
    type: Literal["computer_screenshot"]
    image_url: str | None = None
    file_id: str | None = None


class ComputerCallOutput(msgspec.Struct, tag="computer_call_output", tag_field="type"):
    call_id: CallId
    output: ComputerScreenshot
    acknowledged_safety_checks: list[dict[str, Any]] | None = None
    id: str | None = None
    status: ItemStatus | None = None


class ToolSearchCall(msgspec.Struct, tag="tool_search_call", tag_field="type"):
    arguments: Any
    call_id: CallId | None = None
    execution: Execution = "client"
    id: str | None = None
    status: ItemStatus | None = None


class ToolSearchOutput(msgspec.Struct, tag="tool_search_output", tag_field="type"):
    tools: list[dict[str, Any]]
    call_id: CallId | None = None
    execution: Execution = "client"
    id: str | None = None
    status: ItemStatus | None = None


class AdditionalTools(msgspec.Struct, tag="additional_tools", tag_field="type"):
    """Tools made available from this point of the conversation on (developer-provided)."""

    tools: list[dict[str, Any]]
    role: Literal["developer"] = "developer"
    id: str | None = None


ToolItem = (
    LocalShellCall
    | LocalShellCallOutput
    | ShellCall
    | ShellCallOutput
    | ApplyPatchCall
    | ApplyPatchCallOutput
    | ComputerCall
    | ComputerCallOutput
    | ToolSearchCall
    | ToolSearchOutput
    | AdditionalTools
)

ID_PREFIXES = {
    "local_shell_call": "lsh",
    "local_shell_call_output": "lsho",
    "shell_call": "sh",
    "shell_call_output": "sho",
    "apply_patch_call": "apc",
    "apply_patch_call_output": "apco",
    "computer_call": "cu",
    "computer_call_output": "cuo",
    "tool_search_call": "tsc",
    "tool_search_output": "tso",
    "additional_tools": "at",
}
TOOL_ITEM_TYPES = list(ID_PREFIXES)

# Items that ask the client to run something, and the items that answer them (by `call_id`).
CALL_TYPES = frozenset(
    {"local_shell_call", "shell_call", "apply_patch_call", "computer_call", "tool_search_call"}
)
OUTPUT_TYPES = frozenset(
    {
        "local_shell_call_output",
        "shell_call_output",
        "apply_patch_call_output",
        "computer_call_output",
        "tool_search_output",
    }
)


def stored_body(item: ToolItem) -> dict[str, Any]:
    """The item as Rapport stores and lists it (module docstring)."""
    fields = msgspec.to_builtins(item)
    kind = fields.pop("type")
    fields.pop("id", None)
    body: dict[str, Any] = {"id": ids.new_id(ID_PREFIXES[kind]), "type": kind, **fields}
    if isinstance(item, LocalShellCallOutput):
        body.pop("call_id", None)
        body["call_id"] = item.answers
    if isinstance(item, ApplyPatchCall):
        body["status"] = item.status or "completed"
    elif "status" in body and not isinstance(item, ApplyPatchCallOutput):
        body["status"] = "completed"
    if isinstance(item, ComputerCall):
        for unset in ("action", "actions"):
            if body.get(unset) is None:
                body.pop(unset, None)
    if isinstance(item, ComputerCallOutput):
        body["acknowledged_safety_checks"] = item.acknowledged_safety_checks or []
    return body
