"""Pure translation between Responses and Anthropic's Messages API; no I/O.

Requests: `instructions` and any system or developer messages become `system`; items become
alternating user and assistant turns (consecutive items of one side share a turn, so a turn's
tool results travel together in one user turn, as Anthropic wants them); calls of every tool
become `tool_use` blocks under the name the catalog offers the tool as, their outputs
`tool_result` blocks. A reasoning item made by Anthropic goes back as the thinking block it
was, signature and all (app/providers/native.py); reasoning from other providers is left out,
since Anthropic accepts only thinking it signed.

Answers: content blocks become items in their order (app/providers/assemble.py), and
`stop_reason` the Response's status: `max_tokens` → incomplete (max_output_tokens), `refusal`
→ incomplete (content_filter).
"""

from __future__ import annotations

import json
from typing import Any

from app.config import ModelRoute
from app.providers import native, parts, tool_mapping, tool_replay
from app.providers.assemble import Assembler
from app.providers.base import GenerationRequest, GenerationResult, UpstreamProtocolError
from app.providers.catalog import ToolCatalog
from app.providers.params import takes
from app.providers.translate import INCOMPLETE_REASONS, reasoning_text
from app.wire.items import CALL_TYPES, OUTPUT_TYPES
from app.wire.responses import InputTokensDetails, OutputTokensDetails, ResponseUsage
from app.wire.tools import (
    FormatJsonObject,
    FormatJsonSchema,
    ToolChoiceAllowed,
    ToolChoiceCustom,
    ToolChoiceFunction,
)

PROVIDER = "anthropic"
# Anthropic needs max_tokens on every request; without the request's or the route's, this.
DEFAULT_MAX_TOKENS = 8192
# reasoning.effort → a thinking budget (thinking_style "budget"; at least 1024, Anthropic's
# floor) or an adaptive-thinking effort level (thinking_style "effort").
THINKING_BUDGETS = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}
EFFORT_LEVELS = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "max",
    "max": "max",
}
MIN_THINKING_BUDGET = 1024
# stop_reason → the chat-completions finish_reason the run loop reads (translate.py).
FINISH_REASONS = {
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}
# Anthropic's first turn must be the user's; a window cut before it starts with this.
OMITTED = "(The earlier part of this conversation is omitted.)"


def to_body(request: GenerationRequest, route: ModelRoute, catalog: ToolCatalog) -> dict[str, Any]:
    """The `/v1/messages` body for one generation."""
    params = request.params
    system, messages = to_messages(request.instructions, request.context, catalog)
    body: dict[str, Any] = {"model": route.upstream_model or request.model, "messages": messages}
    forced = _add_tools(body, request, catalog)
    effort = None if forced else _effort(params)
    max_tokens = params.max_output_tokens or route.max_output_tokens
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS + (THINKING_BUDGETS[effort] if effort else 0)
    body["max_tokens"] = max_tokens
    if effort is not None:
        _add_thinking(body, effort, route.thinking_style, max_tokens)
    if note := _format_note(request):
        system.append(note)
    if system:
        body["system"] = "\n\n".join(system)
    thinking_on = "thinking" in body
    if params.temperature is not None and not thinking_on:
        body["temperature"] = min(params.temperature, 1.0)  # Anthropic's range ends at 1
    if params.top_p is not None and (not thinking_on or params.top_p >= 0.95):
        body["top_p"] = params.top_p
    if params.top_k is not None and takes(route).top_k and not thinking_on:
        body["top_k"] = params.top_k
    if user := params.safety_identifier or params.user:
        body["metadata"] = {"user_id": user}
    return body


def _effort(params: Any) -> str | None:
    """The reasoning effort asked for, when it asks for thinking at all."""
    effort = params.reasoning.effort if params.reasoning is not None else None
    return effort if effort in THINKING_BUDGETS else None


def _add_thinking(body: dict[str, Any], effort: str, style: str, max_tokens: int) -> None:
    if style == "effort":
        body["thinking"] = {"type": "adaptive"}
        body["output_config"] = {"effort": EFFORT_LEVELS[effort]}
        return
    budget = min(THINKING_BUDGETS[effort], max_tokens - 1)  # within max_tokens, below it
    if budget >= MIN_THINKING_BUDGET:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _format_note(request: GenerationRequest) -> str | None:
    """Anthropic has no JSON mode; a `text.format` is asked of the model in the system text."""
    text = request.params.text
    if text is None:
        return None
    if isinstance(text.format, FormatJsonSchema):
        schema = json.dumps(text.format.schema)
        return f"Answer with one JSON document only, valid against this JSON schema: {schema}"
    if isinstance(text.format, FormatJsonObject):
        return "Answer with one JSON object only."
    return None


def _add_tools(body: dict[str, Any], request: GenerationRequest, catalog: ToolCatalog) -> bool:
    """Tools and tool_choice; True when the choice forces a call (Anthropic then refuses
    thinking)."""
    params = request.params
    choice = params.tool_choice
    entries = catalog.entries
    mode: dict[str, Any] | None = None
    if choice == "none":
        mode = {"type": "none"}
    elif choice == "required":
        mode = {"type": "any"}
    elif isinstance(choice, ToolChoiceFunction | ToolChoiceCustom):
        named = catalog.named(choice.name)
        mode = {"type": "tool", "name": named.upstream if named is not None else choice.name}
    elif isinstance(choice, ToolChoiceAllowed):  # no subset in Anthropic: offer only those
        allowed = {tool.get("name") for tool in choice.tools}
        entries = [e for e in entries if e.name in allowed or e.upstream in allowed]
        mode = {"type": "any" if choice.mode == "required" else "auto"}
    if not entries:
        return False
    body["tools"] = [_tool(tool_mapping.chat_function(entry)) for entry in entries]
    if params.parallel_tool_calls is False:
        mode = {"type": "auto", **(mode or {}), "disable_parallel_tool_use": True}
        if mode["type"] == "none":
            mode.pop("disable_parallel_tool_use")
    if mode is not None:
        body["tool_choice"] = mode
    return mode is not None and mode["type"] in ("any", "tool")


def _tool(function: dict[str, Any]) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        tool["description"] = function["description"]
    tool["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return tool


def to_messages(
    instructions: str | None, context: list[dict[str, Any]], catalog: ToolCatalog
) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, messages) for the context."""
    system = [instructions] if instructions else []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": list(blocks)})

    for item in context:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in ("system", "developer"):
            if text := parts.text_of(item.get("content")):
                system.append(text)
        elif kind == "message":
            role = "assistant" if item.get("role") == "assistant" else "user"
            add(role, _blocks(item.get("content")))
        elif kind == "reasoning":
            if (state := native.of_item(PROVIDER, item)) is not None:
                add("assistant", [_thinking_block(item, state)])
        elif kind in CALL_TYPES:
            call = tool_replay.as_call(item, catalog)
            add("assistant", [_tool_use(call["call_id"], call["name"], call["arguments"])])
        elif kind == "mcp_call":
            add("assistant", [_tool_use(item["id"], item["name"], item["arguments"])])
            error = item.get("error")
            result = item.get("output") or (
                f"The tool call failed: {json.dumps(error)}" if error else ""
            )
            add("user", [_tool_result(item["id"], result)])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            add("user", [_tool_result(item["call_id"], item.get("output"))])
        elif kind in OUTPUT_TYPES:
            add("user", [_client_tool_result(item, catalog)])
    if turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": OMITTED}]})
    return system, turns


def _thinking_block(item: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    if isinstance(state.get("redacted"), str):
        return {"type": "redacted_thinking", "data": state["redacted"]}
    return {
        "type": "thinking",
        "thinking": reasoning_text(item),
        "signature": str(state.get("signature") or ""),
    }


def safe_id(call_id: str) -> str:
    """Anthropic's tool ids take letters, digits, `_` and `-` only; both sides of a pair are
    sent through this, so they still match."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in call_id)


def _tool_use(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    try:
        tool_input = json.loads(arguments) if arguments else {}
    except ValueError:
        tool_input = {"input": arguments}
    if not isinstance(tool_input, dict):
        tool_input = {"input": tool_input}
    return {"type": "tool_use", "id": safe_id(call_id), "name": name, "input": tool_input}


def _tool_result(call_id: str, output: Any) -> dict[str, Any]:
    content: Any = output if isinstance(output, str) else _blocks(output)
    return {"type": "tool_result", "tool_use_id": safe_id(call_id), "content": content or ""}


def _client_tool_result(item: dict[str, Any], catalog: ToolCatalog) -> dict[str, Any]:
    """A client-executed tool's output; a computer call's screenshot rides in the result."""
    text = tool_replay.tool_message(item, catalog)["content"]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
    output = item.get("output") if isinstance(item.get("output"), dict) else {}
    if item["type"] == "computer_call_output" and (image := _image(output or {})):
        blocks.append(image)
    return {
        "type": "tool_result",
        "tool_use_id": safe_id(item.get("call_id") or ""),
        "content": blocks,
    }


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        kind = part.get("type")
        if kind == "input_image":
            block = _image(part)
        elif kind == "input_file":
            block = _document(part)
        else:
            text = part.get("text") or part.get("refusal") or ""
            block = {"type": "text", "text": text} if text else None
        if block is not None:
            blocks.append(block)
    return blocks


def _image(part: dict[str, Any]) -> dict[str, Any] | None:
    url = parts.image_url(part)
    if (inline := parts.data_url(url)) is not None:
        source: dict[str, Any] = {"type": "base64", "media_type": inline[0], "data": inline[1]}
    elif url:
        source = {"type": "url", "url": url}
    elif part.get("file_id"):
        source = {"type": "file", "file_id": part["file_id"]}
    else:
        return None
    return {"type": "image", "source": source}


def _document(part: dict[str, Any]) -> dict[str, Any] | None:
    inline = parts.data_url(part.get("file_data"))
    source: dict[str, Any]
    if inline is not None and inline[0].startswith("text/"):
        text = parts.decoded_text(inline[1])
        source = {"type": "text", "media_type": "text/plain", "data": text or ""}
    elif inline is not None:
        source = {"type": "base64", "media_type": inline[0], "data": inline[1]}
    elif part.get("file_url"):
        source = {"type": "url", "url": part["file_url"]}
    elif part.get("file_id"):
        source = {"type": "file", "file_id": part["file_id"]}
    else:
        return None
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.get("filename"):
        block["title"] = part["filename"]
    return block


def thinking_state(block: dict[str, Any]) -> str:
    """The encrypted_content a thinking or redacted_thinking block is kept as."""
    if block.get("type") == "redacted_thinking":
        return native.wrap(PROVIDER, {"redacted": str(block.get("data") or "")})
    return native.wrap(PROVIDER, {"signature": str(block.get("signature") or "")})


def from_message(payload: Any, catalog: ToolCatalog) -> GenerationResult:
    """Output items, usage and status from a whole Message; a bad shape is a protocol error."""
    content = payload.get("content") if isinstance(payload, dict) else None
    if not isinstance(content, list):
        raise UpstreamProtocolError("the message had no content list")
    built = Assembler(catalog)
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            built.text(str(block.get("text") or ""))
        elif kind == "thinking":
            built.reasoning(str(block.get("thinking") or ""))
            built.reasoning_end(thinking_state(block))
        elif kind == "redacted_thinking":
            built.reasoning_end(thinking_state(block))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            built.call(str(block.get("id") or ""), str(block.get("name") or ""), arguments)
    finish = FINISH_REASONS.get(str(payload.get("stop_reason")), "stop")
    reason = INCOMPLETE_REASONS.get(finish)
    return GenerationResult(
        output=built.finish("incomplete" if reason else "completed"),
        usage=usage_from(payload.get("usage")),
        status="incomplete" if reason else "completed",
        incomplete_reason=reason,  # type: ignore[arg-type]
    )


def usage_from(raw: Any) -> ResponseUsage:
    """Anthropic counts cache reads and writes apart from `input_tokens`; a Response counts
    them in, with the cached share (and the written one) in its details."""
    raw = raw if isinstance(raw, dict) else {}
    read = int(raw.get("cache_read_input_tokens") or 0)
    written = int(raw.get("cache_creation_input_tokens") or 0)
    prompt = int(raw.get("input_tokens") or 0) + read + written
    output = int(raw.get("output_tokens") or 0)
    return ResponseUsage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=prompt + output,
        input_tokens_details=InputTokensDetails(cached_tokens=read, cache_write_tokens=written),
        output_tokens_details=OutputTokensDetails(),
    )
