"""Tool types whose calls the client executes: shells, patches, a computer, and tool search.

OpenAI runs none of these itself (except a server-side tool search): the model asks, the
client runs the command or applies the patch, and sends the result back as an `*_output` item.
A chat-completions upstream has none of them, so each travels there as a function
(`app/providers/client_tools.py`); these Structs are only their definitions as clients send
them. A `shell` tool in a hosted container is OpenAI's to run, so only the local one is here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.errors import not_supported
from app.wire import codec


class LocalShellTool(msgspec.Struct, tag="local_shell", tag_field="type"):
    pass


class ShellTool(msgspec.Struct, tag="shell", tag_field="type"):
    environment: dict[str, Any] | None = None


class ApplyPatchTool(msgspec.Struct, tag="apply_patch", tag_field="type"):
    pass


class ComputerTool(msgspec.Struct, tag="computer", tag_field="type"):
    pass


class ComputerUsePreviewTool(msgspec.Struct, tag="computer_use_preview", tag_field="type"):
    environment: Literal["windows", "mac", "linux", "ubuntu", "browser"]
    display_width: Annotated[int, msgspec.Meta(ge=1)]
    display_height: Annotated[int, msgspec.Meta(ge=1)]


class ToolSearchTool(msgspec.Struct, tag="tool_search", tag_field="type"):
    """With `execution: "client"` the client searches its own deferred tools; otherwise the
    server does (app/providers/catalog.py says how Rapport serves that)."""

    execution: Literal["server", "client"] | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None


ClientTool = (
    LocalShellTool
    | ShellTool
    | ApplyPatchTool
    | ComputerTool
    | ComputerUsePreviewTool
    | ToolSearchTool
)

CLIENT_TOOL_TYPES = frozenset(
    {"local_shell", "shell", "apply_patch", "computer", "computer_use_preview", "tool_search"}
)


def parse_tool(value: dict[str, Any], at: str) -> ClientTool:
    """One client-executed tool definition, or OpenAI's 400 naming what is wrong with it."""
    tool: ClientTool = codec.convert(value, ClientTool, at=at)  # type: ignore[arg-type]
    if isinstance(tool, ShellTool) and tool.environment is not None:
        kind = tool.environment.get("type")
        if kind != "local":
            raise not_supported(f"{at}.environment", f"A shell environment of type '{kind}'")
    return tool


def echo_client_tool(tool: ClientTool) -> dict[str, Any]:
    """The tool as the Response echoes it: its type and the fields it was given."""
    fields: dict[str, Any] = msgspec.to_builtins(tool)
    return {key: value for key, value in fields.items() if value is not None}
