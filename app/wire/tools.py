"""Tools, tool_choice, text formats and reasoning settings of the create call.

`tools` arrives as JSON objects and is converted one by one, so that a tool type OpenAI has but
Rapport cannot run (web_search, file_search, …) gets a 400 that names it instead of msgspec's
generic "invalid tag".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.wire.items import ToolName


class FunctionTool(msgspec.Struct, tag="function", tag_field="type"):
    name: ToolName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomTool(msgspec.Struct, tag="custom", tag_field="type"):
    """A tool whose call carries free text (`input`), not JSON arguments. Chat-completions
    upstreams have no such tool: it travels as a function with one string argument."""

    name: ToolName
    description: str | None = None
    format: dict[str, Any] | None = None


HOSTED_TOOL_TYPES = frozenset(
    {
        "file_search",
        "web_search",
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "computer",
        "computer_use_preview",
        "mcp",
        "code_interpreter",
        "image_generation",
        "local_shell",
        "shell",
        "apply_patch",
        "namespace",
        "tool_search",
        "programmatic_tool_calling",
    }
)

Tool = FunctionTool | CustomTool


class ToolChoiceFunction(msgspec.Struct, tag="function", tag_field="type"):
    name: str


class ToolChoiceCustom(msgspec.Struct, tag="custom", tag_field="type"):
    name: str


class ToolChoiceAllowed(msgspec.Struct, tag="allowed_tools", tag_field="type"):
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


class ToolChoiceMcp(msgspec.Struct, tag="mcp", tag_field="type"):
    """Make the model use one MCP server's tools (or one tool of it, `name`)."""

    server_label: str
    name: str | None = None


class ToolChoiceWebSearch(msgspec.Struct, tag="web_search", tag_field="type"):
    """`{"type": "web_search_preview"}` and its siblings: make the model search."""


class ToolChoiceWebSearch2025(msgspec.Struct, tag="web_search_2025_08_26", tag_field="type"):
    pass


class ToolChoiceWebSearchPreview(msgspec.Struct, tag="web_search_preview", tag_field="type"):
    pass


class ToolChoiceWebSearchPreview2025(
    msgspec.Struct, tag="web_search_preview_2025_03_11", tag_field="type"
):
    pass


HostedChoice = (
    ToolChoiceMcp
    | ToolChoiceWebSearch
    | ToolChoiceWebSearch2025
    | ToolChoiceWebSearchPreview
    | ToolChoiceWebSearchPreview2025
)

ToolChoice = (
    Literal["none", "auto", "required"]
    | ToolChoiceFunction
    | ToolChoiceCustom
    | ToolChoiceAllowed
    | HostedChoice
)


class FormatText(msgspec.Struct, tag="text", tag_field="type"):
    pass


class FormatJsonObject(msgspec.Struct, tag="json_object", tag_field="type"):
    pass


class FormatJsonSchema(msgspec.Struct, tag="json_schema", tag_field="type"):
    name: Annotated[str, msgspec.Meta(max_length=64, pattern="^[a-zA-Z0-9_-]+$")]
    schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = False


TextFormat = FormatText | FormatJsonObject | FormatJsonSchema


class TextConfig(msgspec.Struct):
    format: TextFormat = msgspec.field(default_factory=FormatText)
    verbosity: Literal["low", "medium", "high"] | None = "medium"


class ReasoningConfig(msgspec.Struct):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None
    mode: str | None = None
    context: Literal["auto", "current_turn", "all_turns"] | None = None


def echo_tool(tool: Tool) -> dict[str, Any]:
    """The tool as OpenAI echoes it on the Response: every key present, `strict` resolved."""
    if isinstance(tool, CustomTool):
        echoed: dict[str, Any] = {"type": "custom", "name": tool.name}
        echoed["description"] = tool.description
        echoed["format"] = tool.format or {"type": "text"}
        return echoed
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": True if tool.strict is None else tool.strict,
    }
