"""Pure translation for an upstream that is itself a Responses server; no I/O.

Rapport keeps the state, so the upstream is sent the rebuilt context whole, with `store:
false` and `include: ["reasoning.encrypted_content"]`: its reasoning items come back opaque,
are kept (with the upstream's own item id) in the reasoning item's `encrypted_content`
(app/providers/native.py), and go back as the upstream made them. Tools go as the functions
the catalog offers (so any Responses server can take them, and names map back as for the
other providers); hosted tools the route lets the upstream run (`upstream_tools`) go as the
client sent them, and their items — in the answer, and in later turns' context — travel whole.

Answers, whole or streamed, become the same deltas (`output_deltas`, `event_deltas`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.config import ModelRoute
from app.providers import logprobs, native, tool_replay
from app.providers.base import (
    Delta,
    ForeignItem,
    GenerationRequest,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
)
from app.providers.catalog import ToolCatalog
from app.providers.params import takes
from app.providers.tool_mapping import chat_function
from app.wire.hosted_tools import WEB_SEARCH_TYPES
from app.wire.items import CALL_TYPES, OUTPUT_TYPES
from app.wire.responses import InputTokensDetails, OutputTokensDetails, ResponseUsage
from app.wire.tools import HostedChoice, ToolChoiceAllowed, ToolChoiceCustom, ToolChoiceFunction

PROVIDER = "openai-responses"
INCLUDE = "reasoning.encrypted_content"
# The item types of the hosted tools an upstream may run (config.UPSTREAM_TOOL_TYPES).
UPSTREAM_ITEMS = {
    "web_search_call": WEB_SEARCH_TYPES,
    "file_search_call": frozenset({"file_search"}),
    "code_interpreter_call": frozenset({"code_interpreter"}),
    "image_generation_call": frozenset({"image_generation"}),
}
# A Response's incomplete reason → the chat-completions finish_reason the run loop reads.
FINISH_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def to_body(
    request: GenerationRequest, route: ModelRoute, catalog: ToolCatalog, *, stream: bool
) -> dict[str, Any]:
    params = request.params
    allowed = takes(route)
    include = [INCLUDE]
    if logprobs.wanted(params.include):
        include.append(logprobs.INCLUDE)
    body: dict[str, Any] = {
        "model": route.upstream_model or request.model,
        "input": to_input(request.context, catalog, route),
        "store": False,
        "include": include,
        "stream": stream,
    }
    optional = {
        "instructions": request.instructions,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if allowed.top_k else None,
        "top_logprobs": params.top_logprobs if logprobs.wanted(params.include) else None,
        "max_output_tokens": params.max_output_tokens or route.max_output_tokens,
        "metadata": (params.metadata or None) if allowed.metadata else None,
        "user": params.user,
        "safety_identifier": params.safety_identifier,
        "prompt_cache_key": params.prompt_cache_key,
        "prompt_cache_retention": params.prompt_cache_retention,
        "service_tier": params.service_tier,
        "parallel_tool_calls": params.parallel_tool_calls,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if params.reasoning is not None:
        reasoning = {"effort": params.reasoning.effort, "summary": params.reasoning.summary}
        body["reasoning"] = {k: v for k, v in reasoning.items() if v is not None}
    if params.text is not None:
        text = msgspec.to_builtins(params.text)
        if not allowed.verbosity:
            text.pop("verbosity", None)
        body["text"] = text
    tools = [{"type": "function", **chat_function(entry)} for entry in catalog.entries]
    tools += [t for t in params.tools or [] if t.get("type") in route.upstream_tools]
    if tools:
        body["tools"] = tools
    if (choice := _tool_choice(params.tool_choice, catalog)) is not None:
        body["tool_choice"] = choice
    return body


def _tool_choice(choice: Any, catalog: ToolCatalog) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    if isinstance(choice, ToolChoiceFunction | ToolChoiceCustom):
        named = catalog.named(choice.name)
        return {"type": "function", "name": named.upstream if named else choice.name}
    if isinstance(choice, ToolChoiceAllowed):
        names = {tool.get("name") for tool in choice.tools}
        tools = [
            {"type": "function", "name": e.upstream}
            for e in catalog.entries
            if e.name in names or e.upstream in names
        ]
        return {"type": "allowed_tools", "mode": choice.mode, "tools": tools}
    if isinstance(choice, HostedChoice):
        return msgspec.to_builtins(choice)  # a hosted tool the upstream runs
    return None


def to_input(
    context: list[dict[str, Any]], catalog: ToolCatalog, route: ModelRoute
) -> list[dict[str, Any]]:
    """The context as input items, without Rapport's ids (the upstream stores nothing)."""
    sent: list[dict[str, Any]] = []
    relayed = {
        kind for kind, tools in UPSTREAM_ITEMS.items() if tools & frozenset(route.upstream_tools)
    }
    for item in context:
        kind = item.get("type", "message")
        if kind == "message":
            message = {"type": "message", "role": item["role"], "content": _content(item)}
            sent.append(message)
        elif kind == "reasoning":
            if (state := native.of_item(PROVIDER, item)) is not None:
                sent.append(
                    {
                        "type": "reasoning",
                        "id": state.get("id"),
                        "summary": item.get("summary") or [],
                        "encrypted_content": state.get("encrypted_content"),
                    }
                )
        elif kind in CALL_TYPES or kind == "mcp_call":
            call = (
                {"call_id": item["id"], "name": item["name"], "arguments": item["arguments"]}
                if kind == "mcp_call"
                else tool_replay.as_call(item, catalog)
            )
            sent.append({"type": "function_call", **call})
            if kind == "mcp_call":
                output = item.get("output") or f"The tool call failed: {item.get('error')}"
                sent.append(_output(call["call_id"], output))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            sent.append(_output(item["call_id"], item.get("output") or ""))
        elif kind in OUTPUT_TYPES:
            text = tool_replay.tool_message(item, catalog)["content"]
            sent.append(_output(item.get("call_id") or "", text))
        elif kind in relayed:
            sent.append(item)
    return sent


def _content(item: dict[str, Any]) -> Any:
    content = item.get("content")
    if not isinstance(content, list):
        return content
    return [{k: v for k, v in part.items() if k != "logprobs"} for part in content]


def _output(call_id: str, output: Any) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def reasoning_item(upstream: dict[str, Any]) -> dict[str, Any]:
    """The upstream's reasoning item as Rapport keeps it: readable parts as they came, its id
    and encrypted content kept as its state."""
    item: dict[str, Any] = {
        "id": upstream.get("id") or "rs",
        "type": "reasoning",
        "summary": upstream.get("summary") or [],
    }
    if upstream.get("content"):
        item["content"] = upstream["content"]
    if upstream.get("encrypted_content"):
        state = {"id": upstream.get("id"), "encrypted_content": upstream["encrypted_content"]}
        item["encrypted_content"] = native.wrap(PROVIDER, state)
    return item


def output_deltas(output: list[dict[str, Any]]) -> list[Delta]:
    """A whole answer's output items as the deltas a stream of it would have yielded."""
    found: list[Delta] = []
    for index, item in enumerate(output):
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text" and part.get("text"):
                    found.append(TextDelta(str(part["text"])))
                elif part.get("type") == "refusal" and part.get("refusal"):
                    found.append(RefusalDelta(str(part["refusal"])))
        elif kind == "function_call":
            name, arguments = item.get("name"), str(item.get("arguments") or "")
            found.append(ToolCallDelta(index, item.get("call_id"), name, arguments))
        elif kind == "reasoning":
            found.append(ForeignItem(reasoning_item(item)))
        elif isinstance(kind, str):
            found.append(ForeignItem(item))
    return found


def event_deltas(event: dict[str, Any]) -> list[Delta]:
    """The deltas of one stream event (hosted tools' progress events are not relayed)."""
    kind = event.get("type")
    index = int(event.get("output_index") or 0)
    if kind == "response.output_text.delta" and event.get("delta"):
        return [TextDelta(str(event["delta"]))]
    if kind == "response.refusal.delta" and event.get("delta"):
        return [RefusalDelta(str(event["delta"]))]
    if kind == "response.function_call_arguments.delta" and event.get("delta"):
        return [ToolCallDelta(index, None, None, str(event["delta"]))]
    raw = event.get("item")
    item: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind == "response.output_item.added" and item.get("type") == "function_call":
        return [ToolCallDelta(index, item.get("call_id"), item.get("name"), "")]
    if kind == "response.output_item.done" and item.get("type") not in (
        "message",
        "function_call",
        None,
    ):
        return output_deltas([item])
    return []


def finish_reason(response: dict[str, Any]) -> str:
    details = response.get("incomplete_details") or {}
    return FINISH_REASONS.get(str(details.get("reason")), "stop")


def usage_from(raw: Any) -> ResponseUsage:
    raw = raw if isinstance(raw, dict) else {}
    given = raw.get("input_tokens_details") or {}
    made = raw.get("output_tokens_details") or {}
    prompt, output = int(raw.get("input_tokens") or 0), int(raw.get("output_tokens") or 0)
    return ResponseUsage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=int(raw.get("total_tokens") or prompt + output),
        input_tokens_details=InputTokensDetails(
            cached_tokens=int(given.get("cached_tokens") or 0),
            cache_write_tokens=int(given.get("cache_write_tokens") or 0),
        ),
        output_tokens_details=OutputTokensDetails(
            reasoning_tokens=int(made.get("reasoning_tokens") or 0)
        ),
    )
