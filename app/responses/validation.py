"""Cross-field checks of a create request, and the two fields decoded item by item.

Everything a later feature implements (streaming, background, conversations, …) is refused here
with a 400 that names the parameter, so no request is ever half-honoured in silence.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app import ids
from app.config import ModelRoute
from app.errors import InvalidRequest, invalid_value, not_supported
from app.responses.tool_checks import (
    TOOL_TYPES,
    check_unique,
    function_tools,
    parse_namespace,
)
from app.wire import codec
from app.wire.client_tools import CLIENT_TOOL_TYPES
from app.wire.client_tools import parse_tool as parse_client_tool
from app.wire.hosted_tools import WEB_SEARCH_TYPES, HostedToolSpec, McpTool, WebSearchTool
from app.wire.items import (
    KNOWN_UNSUPPORTED_INPUT_TYPES,
    SUPPORTED_INPUT_TYPES,
    InputItem,
    Message,
)
from app.wire.responses import CreateResponseRequest
from app.wire.tool_items import AdditionalTools, ToolSearchOutput
from app.wire.tools import (
    HOSTED_TOOL_TYPES,
    CustomTool,
    FunctionTool,
    HostedChoice,
    Tool,
    ToolChoiceAllowed,
    ToolChoiceCustom,
    ToolChoiceFunction,
    ToolChoiceMcp,
)


class ParsedTools(msgspec.Struct, frozen=True):
    """`tools` split by who runs them: the client (offered upstream as they are) or Rapport
    (hosted: offered as functions by the run loop); `indexed_hosted` keeps each hosted tool's
    place in `tools` for error messages, `echoed` the order the Response shows."""

    client: tuple[Tool, ...] = ()
    indexed_hosted: tuple[tuple[int, HostedToolSpec], ...] = ()
    echoed: tuple[Tool | HostedToolSpec, ...] = ()

    @property
    def hosted(self) -> tuple[HostedToolSpec, ...]:
        return tuple(spec for _, spec in self.indexed_hosted)


class PreparedRequest(msgspec.Struct, frozen=True):
    model: str
    input_items: list[InputItem]
    parsed_tools: ParsedTools
    request: CreateResponseRequest
    conversation_id: str | None = None

    @property
    def tools(self) -> tuple[Tool, ...]:
        return self.parsed_tools.client


def prepare(
    request: CreateResponseRequest, dropped: frozenset[str] = frozenset()
) -> PreparedRequest:
    """Validate what a msgspec type cannot say alone; raise the 400 OpenAI would send.
    `dropped`: the hosted tool types the model's route leaves out rather than refuses."""
    if request.model is msgspec.UNSET or not request.model:
        raise InvalidRequest(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    _check_exclusive(request)
    _check_no_nul(request)
    _check_not_yet_supported(request)
    if request.previous_response_id is not None:
        ids.expect(request.previous_response_id, ids.RESPONSE, "previous_response_id")
    if request.input is None and request.previous_response_id is None:
        raise InvalidRequest(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    tools = parse_tools(request.tools or [], dropped=dropped)
    _check_tool_choice(request, tools.client)
    _check_hosted_choice(request, tools.hosted)
    return PreparedRequest(
        model=request.model,
        input_items=parse_input(request.input, dropped=dropped),
        parsed_tools=tools,
        request=request,
        conversation_id=_conversation_id(request),
    )


def _conversation_id(request: CreateResponseRequest) -> str | None:
    """`conversation` may be an id or `{"id": …}`; either way it must look like an id."""
    conversation = request.conversation
    if conversation is None:
        return None
    value = conversation if isinstance(conversation, str) else conversation.id
    ids.expect(value, ids.CONVERSATION, "conversation")
    if request.store is False:
        raise InvalidRequest(
            "A response on a conversation is added to it, so it must be stored: 'conversation' "
            "cannot be combined with 'store': false.",
            param="store",
            code="invalid_value",
        )
    return value


def parse_input(
    raw: str | list[dict[str, Any]] | None,
    param: str = "input",
    dropped: frozenset[str] = frozenset(),
) -> list[InputItem]:
    """A string is one user message; a list is decoded item by item, easy messages tagged.
    The tools an item carries (`additional_tools`, `tool_search_output`) are checked as the
    request's `tools` are."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Message(role="user", content=raw)]
    items: list[InputItem] = []
    for index, value in enumerate(raw):
        at = f"{param}[{index}]"
        kind = value.get("type")
        if kind is None and "role" in value:
            value = {**value, "type": "message"}
        elif kind is None and "id" in value:
            value = {**value, "type": "item_reference"}  # its `type` is optional
        elif kind is None:
            raise InvalidRequest(
                f"Missing required parameter: '{at}.type'.",
                param=f"{at}.type",
                code="missing_required_parameter",
            )
        elif not isinstance(kind, str):
            raise codec.invalid_type(f"{at}.type", "a string", kind)
        elif kind in KNOWN_UNSUPPORTED_INPUT_TYPES:
            raise not_supported(f"{at}.type", f"Input items of type '{kind}'")
        elif kind not in SUPPORTED_INPUT_TYPES:
            raise invalid_value(f"{at}.type", kind, SUPPORTED_INPUT_TYPES)
        item: InputItem = codec.convert(value, InputItem, at=at)  # type: ignore[arg-type]
        if isinstance(item, AdditionalTools | ToolSearchOutput):
            parse_tools(item.tools, param=f"{at}.tools", dropped=dropped)
        items.append(item)
    return items


def parse_tools(
    raw: list[dict[str, Any]], param: str = "tools", dropped: frozenset[str] = frozenset()
) -> ParsedTools:
    """`dropped`: the hosted tool types the model's route leaves out rather than refuses."""
    client: list[Tool] = []
    hosted: list[tuple[int, HostedToolSpec]] = []
    echoed: list[Tool | HostedToolSpec] = []
    for index, value in enumerate(raw):
        at = f"{param}[{index}]"
        kind = value.get("type")
        if not isinstance(kind, str):
            raise codec.invalid_type(f"{at}.type", "a string", kind)
        if kind in dropped:
            continue  # the route leaves this hosted tool out (its `drop_hosted_tools`)
        tool: Tool | HostedToolSpec
        if kind == "mcp":
            tool = _mcp_tool(codec.convert(value, McpTool, at=at), at)
            hosted.append((index, tool))
        elif kind in WEB_SEARCH_TYPES:
            tool = codec.convert(value, WebSearchTool, at=at)
            hosted.append((index, tool))
        elif kind in CLIENT_TOOL_TYPES:
            tool = parse_client_tool(value, at)
            client.append(tool)
        elif kind == "namespace":
            tool = parse_namespace(value, at)
            client.append(tool)
        elif kind in HOSTED_TOOL_TYPES:
            raise not_supported(f"{at}.type", f"The '{kind}' tool")
        elif kind in ("custom", "function"):
            own: Tool = (
                codec.convert(value, CustomTool, at=at)
                if kind == "custom"
                else codec.convert(value, FunctionTool, at=at)
            )
            client.append(own)
            tool = own
        else:
            supported = ["function", "custom", *TOOL_TYPES, "mcp", "web_search"]
            raise invalid_value(f"{at}.type", kind, supported)
        echoed.append(tool)
    check_unique(client, param)
    seen: set[str] = set()
    for index, spec in hosted:
        if isinstance(spec, McpTool):
            if spec.server_label in seen:
                raise InvalidRequest(
                    f"Duplicate MCP server_label: '{spec.server_label}'.",
                    param=f"{param}[{index}].server_label",
                    code="invalid_value",
                )
            seen.add(spec.server_label)
    return ParsedTools(tuple(client), tuple(hosted), tuple(echoed))


def _mcp_tool(tool: McpTool, at: str) -> McpTool:
    if tool.connector_id is not None or tool.tunnel_id is not None:
        which = "connector_id" if tool.connector_id is not None else "tunnel_id"
        raise not_supported(
            f"{at}.{which}", "Hosted connectors and tunnels (only 'server_url' MCP servers)"
        )
    if tool.server_url is None:
        raise InvalidRequest(
            f"Missing required parameter: '{at}.server_url'.",
            param=f"{at}.server_url",
            code="missing_required_parameter",
        )
    return tool


def _check_exclusive(request: CreateResponseRequest) -> None:
    if request.conversation is not None and request.previous_response_id is not None:
        raise InvalidRequest(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            param=None,
            code="mutually_exclusive_parameters",
        )
    if request.background and request.store is False:
        raise InvalidRequest(
            "Background responses must be stored: 'background' requires 'store' to be true.",
            param="background",
            code="invalid_value",
        )
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "'stream_options' is only allowed when 'stream' is true.",
            param="stream_options",
            code="invalid_value",
        )


def _check_no_nul(request: CreateResponseRequest) -> None:
    """Postgres text cannot hold NUL; refuse it in the fields stored as text, not with a 500."""
    for param, value in (("model", request.model), ("instructions", request.instructions)):
        if isinstance(value, str) and "\x00" in value:
            raise InvalidRequest(
                f"Invalid '{param}': the string contains a NUL character (\\u0000).",
                param=param,
                code="invalid_value",
            )


def _check_not_yet_supported(request: CreateResponseRequest) -> None:
    pending: list[tuple[str, bool, str]] = [
        ("moderation", request.moderation is not None, "Moderation"),
        ("background_options", request.background_options is not None, "'background_options'"),
        (
            "prompt_cache_options",
            request.prompt_cache_options is not None,
            "'prompt_cache_options'",
        ),
        ("access_programs", request.access_programs is not None, "'access_programs'"),
        ("image", request.image is not None, "The 'image' options"),
    ]
    for param, present, what in pending:
        if present:
            raise not_supported(param, what)


def check_route_accepts(route: ModelRoute, bodies: list[dict[str, Any]]) -> None:
    """What the model's route cannot take is refused by name, never silently dropped."""
    if route.accepts_files:
        return
    for index, body in enumerate(bodies):
        content = body.get("content") if body.get("type") == "message" else body.get("output")
        for part_index, part in enumerate(content if isinstance(content, list) else []):
            if part.get("type") == "input_file":
                raise InvalidRequest(
                    f"The model '{route.name}' does not accept file inputs ('input_file').",
                    param=f"input[{index}].content[{part_index}]",
                    code="unsupported_parameter",
                )


def _check_hosted_choice(
    request: CreateResponseRequest, hosted: tuple[HostedToolSpec, ...]
) -> None:
    choice = request.tool_choice
    if not isinstance(choice, HostedChoice):
        return
    if isinstance(choice, ToolChoiceMcp):
        found = any(
            isinstance(spec, McpTool) and spec.server_label == choice.server_label
            for spec in hosted
        )
        named = f"mcp' with server_label '{choice.server_label}"
    else:
        found = any(isinstance(spec, WebSearchTool) for spec in hosted)
        named = msgspec.to_builtins(choice)["type"]
    if not found:
        raise InvalidRequest(
            f"Tool choice '{named}' not found in 'tools' parameter.",
            param="tool_choice",
            code="invalid_value",
        )


def _check_tool_choice(request: CreateResponseRequest, tools: tuple[Tool, ...]) -> None:
    functions = function_tools(tools)
    names = {tool.name for tool in functions}
    choice = request.tool_choice
    if isinstance(choice, ToolChoiceFunction | ToolChoiceCustom):
        named, wanted = (
            ("function", FunctionTool)
            if isinstance(choice, ToolChoiceFunction)
            else ("custom", CustomTool)
        )
        if not any(isinstance(tool, wanted) and tool.name == choice.name for tool in functions):
            raise InvalidRequest(
                f"Tool choice '{named}' not found in 'tools' parameter: '{choice.name}'.",
                param="tool_choice",
                code="invalid_value",
            )
    if isinstance(choice, ToolChoiceAllowed):
        for index, tool in enumerate(choice.tools):
            name = tool.get("name")
            kind = tool.get("type")
            if kind not in ("function", "custom") or not isinstance(name, str) or name not in names:
                raise InvalidRequest(
                    "Every allowed tool must be a function or custom tool listed in 'tools'.",
                    param=f"tool_choice.tools[{index}]",
                    code="invalid_value",
                )
