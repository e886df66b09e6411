"""Pure translation between Responses and Gemini's generateContent; no I/O.

Requests: `instructions` and system or developer messages become `systemInstruction`; items
become `user` and `model` contents (consecutive items of one side share one); calls become
`functionCall` parts under the names the catalog offers, outputs `functionResponse` parts.
Gemini has no call ids: Rapport makes its own for each call (unless the upstream sent one),
and a response finds its function's name through the call it answers. `reasoning.effort`
becomes `thinkingConfig` (a budget, or a level per the route's `thinking_style`) with thoughts
included.

Thought signatures: a part's `thoughtSignature` is kept in a reasoning item
(app/providers/native.py) with where it goes back — on the thought part it came on, on the
call after it, or on the text before it — so the next turn's request carries each signature
on the part it came with. Gemini 3 refuses a call with none; a call another provider made
gets the placeholder Google documents for such histories (routes with `thinking_style =
"effort"`, Gemini 3's).

Answers: parts become stream deltas (`deltas`), the same for a whole answer and a streamed
chunk, so both store the same items. `finishReason` SAFETY (and Gemini's other blocks) →
content_filter, MAX_TOKENS → max_output_tokens; a prompt blocked whole has no candidates, only
`promptFeedback.blockReason`.
"""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from app import ids
from app.config import ModelRoute
from app.providers import native, parts, tool_mapping, tool_replay
from app.providers.base import (
    Delta,
    GenerationRequest,
    ReasoningDelta,
    ReasoningEnd,
    TextDelta,
    ToolCallDelta,
)
from app.providers.catalog import ToolCatalog
from app.providers.params import takes
from app.providers.translate import reasoning_text
from app.wire.items import CALL_TYPES, OUTPUT_TYPES
from app.wire.responses import InputTokensDetails, OutputTokensDetails, ResponseUsage
from app.wire.tools import (
    FormatJsonObject,
    FormatJsonSchema,
    ToolChoiceAllowed,
    ToolChoiceCustom,
    ToolChoiceFunction,
)

PROVIDER = "gemini"
UNSIGNED_CALL = "skip_thought_signature_validator"
THINKING_BUDGETS = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 32768,
}
THINKING_LEVELS = {
    "none": "minimal",
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
_BLOCKED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
# finishReason → the chat-completions finish_reason the run loop reads (translate.py).
FINISH_REASONS = {"MAX_TOKENS": "length", **dict.fromkeys(_BLOCKED, "content_filter")}


def model_path(request: GenerationRequest, route: ModelRoute) -> str:
    return (route.upstream_model or request.model).removeprefix("models/")


def to_body(request: GenerationRequest, route: ModelRoute, catalog: ToolCatalog) -> dict[str, Any]:
    """The generateContent body for one generation."""
    params = request.params
    system, contents = to_contents(
        request.instructions, request.context, catalog, unsigned=route.thinking_style == "effort"
    )
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    _add_tools(body, request, catalog)
    config: dict[str, Any] = {}
    optional = {
        "temperature": params.temperature,
        "topP": params.top_p,
        "topK": params.top_k if takes(route).top_k else None,
        "maxOutputTokens": params.max_output_tokens or route.max_output_tokens,
    }
    config.update({key: value for key, value in optional.items() if value is not None})
    effort = params.reasoning.effort if params.reasoning is not None else None
    if effort in THINKING_BUDGETS:
        thinking: dict[str, Any] = {"includeThoughts": effort != "none"}
        if route.thinking_style == "effort":
            thinking["thinkingLevel"] = THINKING_LEVELS[str(effort)]
        else:
            thinking["thinkingBudget"] = THINKING_BUDGETS[str(effort)]
        config["thinkingConfig"] = thinking
    text = params.text
    if text is not None and isinstance(text.format, FormatJsonSchema | FormatJsonObject):
        config["responseMimeType"] = "application/json"
        if isinstance(text.format, FormatJsonSchema):
            config["responseJsonSchema"] = text.format.schema
    if config:
        body["generationConfig"] = config
    return body


def _add_tools(body: dict[str, Any], request: GenerationRequest, catalog: ToolCatalog) -> None:
    if catalog:
        declarations = []
        for entry in catalog.entries:
            function = tool_mapping.chat_function(entry)
            declaration = {"name": function["name"]}
            if function.get("description"):
                declaration["description"] = function["description"]
            if function.get("parameters"):
                declaration["parametersJsonSchema"] = function["parameters"]
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    choice = request.params.tool_choice
    config: dict[str, Any] | None = None
    if choice in ("none", "auto", "required"):
        config = {"mode": {"none": "NONE", "auto": "AUTO", "required": "ANY"}[str(choice)]}
    elif isinstance(choice, ToolChoiceFunction | ToolChoiceCustom):
        named = catalog.named(choice.name)
        name = named.upstream if named is not None else choice.name
        config = {"mode": "ANY", "allowedFunctionNames": [name]}
    elif isinstance(choice, ToolChoiceAllowed):
        wanted = {tool.get("name") for tool in choice.tools}
        names = [e.upstream for e in catalog.entries if e.name in wanted or e.upstream in wanted]
        mode = "ANY" if choice.mode == "required" else "AUTO"
        config = {"mode": mode, "allowedFunctionNames": names} if mode == "ANY" else {"mode": mode}
    if config is not None and catalog:
        body["toolConfig"] = {"functionCallingConfig": config}


def to_contents(
    instructions: str | None,
    context: list[dict[str, Any]],
    catalog: ToolCatalog,
    *,
    unsigned: bool = False,
) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, contents) for the context."""
    system = [instructions] if instructions else []
    turns: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # call_id → the function it called
    waiting: list[str] = []  # a signature for the next model part

    def add(role: str, part: dict[str, Any]) -> None:
        if role == "model" and waiting:
            part["thoughtSignature"] = waiting.pop()
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].append(part)
        else:
            turns.append({"role": role, "parts": [part]})

    for item in context:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in ("system", "developer"):
            if text := parts.text_of(item.get("content")):
                system.append(text)
        elif kind == "message":
            role = "model" if item.get("role") == "assistant" else "user"
            for part in _parts(item.get("content")):
                add(role, part)
        elif kind == "reasoning":
            _replay_signature(item, turns, waiting, add)
        elif kind in CALL_TYPES or kind == "mcp_call":
            call = (
                {"call_id": item["id"], "name": item["name"], "arguments": item["arguments"]}
                if kind == "mcp_call"
                else tool_replay.as_call(item, catalog)
            )
            names[call["call_id"]] = call["name"]
            add("model", {"functionCall": {"name": call["name"], "args": _args(call["arguments"])}})
            if kind == "mcp_call":
                add("user", _response(call["name"], item.get("output") or str(item.get("error"))))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            name = names.get(item["call_id"], "")
            add("user", _response(name, parts.text_of(item.get("output"))))
        elif kind in OUTPUT_TYPES:
            name = names.get(item.get("call_id") or "", "")
            add("user", _response(name, tool_replay.tool_message(item, catalog)["content"]))
    if unsigned:
        _sign_foreign_calls(turns)
    return system, turns


def _replay_signature(
    item: dict[str, Any], turns: list[dict[str, Any]], waiting: list[str], add: Any
) -> None:
    state = native.of_item(PROVIDER, item)
    if state is None or not isinstance(state.get("sig"), str):
        return  # another provider's reasoning: Gemini cannot read it
    at = state.get("at")
    if at == "thought":
        add(
            "model",
            {"text": reasoning_text(item), "thought": True, "thoughtSignature": state["sig"]},
        )
    elif at == "previous" and turns and turns[-1]["role"] == "model":
        turns[-1]["parts"][-1]["thoughtSignature"] = state["sig"]
    else:
        waiting[:] = [state["sig"]]


def _sign_foreign_calls(turns: list[dict[str, Any]]) -> None:
    for turn in turns:
        calls = [part for part in turn["parts"] if "functionCall" in part]
        if turn["role"] == "model" and calls and not any("thoughtSignature" in c for c in calls):
            calls[0]["thoughtSignature"] = UNSIGNED_CALL


def _args(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {"input": arguments}
    return value if isinstance(value, dict) else {"input": value}


def _response(name: str, output: str) -> dict[str, Any]:
    return {"functionResponse": {"name": name, "response": {"output": output}}}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    found: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        kind = part.get("type")
        if kind in ("input_image", "input_file"):
            url = parts.image_url(part) if kind == "input_image" else part.get("file_data")
            url = url or part.get("file_url")
            if (inline := parts.data_url(url)) is not None:
                found.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
            elif isinstance(url, str) and url:
                guessed = mimetypes.guess_type(url)[0] or "application/octet-stream"
                found.append({"fileData": {"mimeType": guessed, "fileUri": url}})
        elif text := part.get("text") or part.get("refusal"):
            found.append({"text": text})
    return found


class Calls:
    """Numbers a response's calls (a call's stream index) and gives each an id."""

    def __init__(self) -> None:
        self.count = 0

    def delta(self, call: dict[str, Any]) -> ToolCallDelta:
        call_id = call.get("id") if isinstance(call.get("id"), str) else None
        delta = ToolCallDelta(
            index=self.count,
            call_id=call_id or ids.new_id("call"),
            name=str(call.get("name") or ""),
            arguments=json.dumps(call.get("args") or {}),
        )
        self.count += 1
        return delta


def deltas(chunk: dict[str, Any], calls: Calls) -> tuple[list[Delta], str | None]:
    """The deltas of one answer (or streamed chunk) and its finish_reason, if it has one."""
    candidates = chunk.get("candidates") or []
    if not candidates:
        blocked = (chunk.get("promptFeedback") or {}).get("blockReason")
        return [], "content_filter" if blocked else None
    candidate = candidates[0]
    found: list[Delta] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        signature = part.get("thoughtSignature")
        if part.get("thought"):
            if part.get("text"):
                found.append(ReasoningDelta(str(part["text"])))
            if signature:
                found.append(_signed(signature, "thought"))
        elif isinstance(part.get("functionCall"), dict):
            if signature:
                found.append(_signed(signature, "next"))
            found.append(calls.delta(part["functionCall"]))
        elif isinstance(part.get("text"), str):
            if part["text"]:
                found.append(TextDelta(part["text"]))
            if signature:
                found.append(_signed(signature, "previous"))
    reason = candidate.get("finishReason")
    if reason is None:
        return found, None
    if reason == "STOP" and calls.count:
        return found, "tool_calls"
    return found, FINISH_REASONS.get(str(reason), "stop")


def _signed(signature: str, at: str) -> ReasoningEnd:
    return ReasoningEnd(native.wrap(PROVIDER, {"sig": signature, "at": at}))


def usage_from(raw: Any) -> ResponseUsage:
    """Gemini counts thoughts apart from the answer; a Response counts them in its output."""
    raw = raw if isinstance(raw, dict) else {}
    prompt = int(raw.get("promptTokenCount") or 0) + int(raw.get("toolUsePromptTokenCount") or 0)
    thoughts = int(raw.get("thoughtsTokenCount") or 0)
    output = int(raw.get("candidatesTokenCount") or 0) + thoughts
    return ResponseUsage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=prompt + output,
        input_tokens_details=InputTokensDetails(
            cached_tokens=int(raw.get("cachedContentTokenCount") or 0)
        ),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=thoughts),
    )
