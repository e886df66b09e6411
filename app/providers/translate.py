"""Pure translation between Responses and chat-completions shapes; no I/O, easy to test.

Requests: instructions become the leading system message; stored items become chat messages
(`function_call` items join the assistant message they follow as `tool_calls`, outputs become
`tool` messages); reasoning items are left out because chat-completions has no slot for them.
Answers: one chat choice becomes output items in OpenAI's order: reasoning, message, calls.
"""

from __future__ import annotations

import json
from typing import Any

from app import ids
from app.config import ModelRoute
from app.providers import client_tools, logprobs, tool_mapping, tool_replay
from app.providers import params as route_params
from app.providers.base import GenerationRequest, GenerationResult, UpstreamProtocolError
from app.providers.catalog import ToolCatalog, catalog_for
from app.wire.items import CALL_TYPES, OUTPUT_TYPES
from app.wire.responses import InputTokensDetails, OutputTokensDetails, ResponseUsage
from app.wire.tools import FormatJsonObject, FormatJsonSchema

# chat-completions finish_reason → Responses incomplete_details.reason; others mean completed.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}

_CHAT_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def to_chat_body(
    request: GenerationRequest, route: ModelRoute, catalog: ToolCatalog | None = None
) -> dict[str, Any]:
    """The `/chat/completions` body for one generation."""
    params = request.params
    takes = route_params.takes(route)
    catalog = catalog or catalog_for(request.tools, request.context)
    body: dict[str, Any] = {
        "model": route.upstream_model or request.model,
        "messages": to_chat_messages(
            request.instructions,
            request.context,
            replay_reasoning=route.replay_reasoning,
            catalog=catalog,
        ),
    }
    optional = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if takes.top_k else None,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
        "metadata": (params.metadata or None) if takes.metadata else None,
        "verbosity": _verbosity(params) if takes.verbosity else None,
        "user": params.user,
        "safety_identifier": params.safety_identifier,
        "prompt_cache_key": params.prompt_cache_key,
        "service_tier": params.service_tier,
        route.max_tokens_param: params.max_output_tokens,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if params.reasoning is not None and params.reasoning.effort is not None:
        body["reasoning_effort"] = params.reasoning.effort
    tool_mapping.add_tools(body, request, catalog)
    body.update(logprobs.request_fields(params.include, params.top_logprobs))
    _add_response_format(body, request, route)
    return body


def to_chat_messages(
    instructions: str | None,
    context: list[dict[str, Any]],
    *,
    replay_reasoning: bool = False,
    catalog: ToolCatalog | None = None,
) -> list[dict[str, Any]]:
    """Items → chat messages. Calls of any tool join the assistant turn under the name their
    tool is offered as now; outputs become tool messages. Screenshots ride in a user message
    after the turn's tool messages (a tool message holds text only, and a user message between
    them would cut the turn). Items that only define tools (`additional_tools`) say nothing."""
    catalog = catalog or ToolCatalog([])
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    reasoning: str | None = None  # waiting for the assistant turn it belongs to
    images: list[dict[str, Any]] = []  # screenshots waiting for the end of the tool messages
    for item in context:
        kind = item["type"]
        if kind == "reasoning":
            reasoning = reasoning_text(item) if replay_reasoning else None
            continue
        if images and kind not in OUTPUT_TYPES:
            messages.append({"role": "user", "content": images})
            images = []
        if kind == "message":
            messages.append(_chat_message(item))
        elif kind in CALL_TYPES:
            _attach_tool_call(messages, tool_replay.as_call(item, catalog))
        elif kind == "mcp_call":
            _add_mcp_call(messages, item)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item["call_id"],
                    "content": _text_of(item["output"]),
                }
            )
        elif kind in OUTPUT_TYPES:
            messages.append(tool_replay.tool_message(item, catalog))
            if kind == "computer_call_output" and (part := client_tools.screenshot_part(item)):
                images.append(part)
        if reasoning and messages and messages[-1]["role"] == "assistant":
            messages[-1]["reasoning_content"] = reasoning
        reasoning = None
    if images:
        messages.append({"role": "user", "content": images})
    return messages


def _add_mcp_call(messages: list[dict[str, Any]], item: dict[str, Any]) -> None:
    """An MCP call Rapport ran in an earlier turn: the model's call and its result, as if the
    model had called a function (its other hosted items — listings, approvals, searches —
    have no chat-completions counterpart and are left out)."""
    call = {"call_id": item["id"], "name": item["name"], "arguments": item["arguments"]}
    _attach_tool_call(messages, call)
    error = item.get("error")
    result = item.get("output") or (f"The tool call failed: {json.dumps(error)}" if error else "")
    messages.append({"role": "tool", "tool_call_id": item["id"], "content": result})


def reasoning_text(item: dict[str, Any]) -> str:
    """A reasoning item's text: its reasoning content, else its summary."""
    parts = item.get("content") or item.get("summary") or []
    return "".join(part.get("text", "") for part in parts)


def _verbosity(params: Any) -> str | None:
    return params.text.verbosity if params.text is not None else None


def _chat_message(item: dict[str, Any]) -> dict[str, Any]:
    role = _CHAT_ROLES[item["role"]]
    parts = item["content"]
    if isinstance(parts, str):
        return {"role": role, "content": parts}
    if role == "assistant" or all(part["type"] in ("input_text", "output_text") for part in parts):
        return {"role": role, "content": _text_of(parts)}
    return {"role": role, "content": [_chat_part(part) for part in parts]}


def _chat_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part["type"]
    if kind == "input_image":
        image: dict[str, Any] = {"url": part.get("image_url") or part.get("file_id")}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {key: part[key] for key in ("file_id", "filename", "file_data") if part.get(key)}
        return {"type": "file", "file": file}
    return {"type": "text", "text": part.get("text", "")}


def _text_of(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text") or part.get("refusal") or "" for part in content)


def _attach_tool_call(messages: list[dict[str, Any]], item: dict[str, Any]) -> None:
    """Consecutive calls (and the assistant text just before them) form one assistant turn.
    A turn of calls alone gets `content: ""`, not null: OpenAI, vLLM, Ollama and llama.cpp take
    either, llama-cpp-python's server only a string."""
    call = {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": item["arguments"]},
    }
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if not last.get("content"):
            last["content"] = ""
    else:
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})


def _add_response_format(
    body: dict[str, Any], request: GenerationRequest, route: ModelRoute
) -> None:
    text = request.params.text
    if text is None:
        return
    if isinstance(text.format, FormatJsonSchema):
        if route.json_schema_style == "json_object_schema":
            body["response_format"] = {"type": "json_object", "schema": text.format.schema}
            return
        schema: dict[str, Any] = {"name": text.format.name, "schema": text.format.schema}
        if text.format.description is not None:
            schema["description"] = text.format.description
        if text.format.strict is not None:
            schema["strict"] = text.format.strict
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(text.format, FormatJsonObject):
        body["response_format"] = {"type": "json_object"}


def from_chat_completion(
    payload: Any, catalog: ToolCatalog | None = None, *, with_logprobs: bool = False
) -> GenerationResult:
    """Output items, usage and status from a chat completion; a bad shape is a protocol error."""
    try:
        choice = payload["choices"][0]
        message = choice["message"]
        finish_reason = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError):
        raise UpstreamProtocolError("the chat completion had no choices[0].message") from None
    incomplete_reason = INCOMPLETE_REASONS.get(finish_reason or "")
    item_status = "incomplete" if incomplete_reason else "completed"
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(reasoning))
    if message.get("content") or message.get("refusal"):
        tokens = logprobs.from_choice(choice) if with_logprobs else []
        item = message_item(message.get("content"), message.get("refusal"), item_status, tokens)
        output.append(item)
    calls = message.get("tool_calls") or []
    output += tool_mapping.call_items(calls, catalog or ToolCatalog([]), item_status)
    return GenerationResult(
        output=output,
        usage=usage_from(payload.get("usage")),
        status="incomplete" if incomplete_reason else "completed",
        incomplete_reason=incomplete_reason,  # type: ignore[arg-type]
        service_tier=payload.get("service_tier"),
    )


def reasoning_item(text: str) -> dict[str, Any]:
    return {
        "id": ids.new_id(ids.REASONING),
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def message_item(
    content: str | None,
    refusal: str | None,
    status: str,
    tokens: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if content:
        text_part = {
            "type": "output_text",
            "annotations": [],
            "logprobs": tokens or [],
            "text": content,
        }
        parts.append(text_part)
    if refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    return {
        "id": ids.new_id(ids.MESSAGE),
        "type": "message",
        "status": status,
        "content": parts,
        "role": "assistant",
    }


def usage_from(raw: Any) -> ResponseUsage:
    """chat-completions usage → Responses usage; absent counts are 0 (some servers omit them)."""
    raw = raw if isinstance(raw, dict) else {}
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return ResponseUsage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=prompt + completion,
        input_tokens_details=InputTokensDetails(
            cached_tokens=int(prompt_details.get("cached_tokens") or 0)
        ),
        output_tokens_details=OutputTokensDetails(
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0)
        ),
    )
