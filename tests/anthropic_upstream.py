"""A deterministic Anthropic Messages API server for tests: `POST /v1/messages`, whole and
streamed, speaking the format as Anthropic documents it, and refusing what Anthropic refuses
(no max_tokens, a first turn not the user's, a tool_result with no tool_use before it, a
thinking block whose signature does not match its text, thinking with a forced tool)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.upstream import Receive, RecordedRequest, Send, TestUpstream, _send_json, leak_forms

_WORD = re.compile(r"\S+\s*")
_TOOL = re.compile(r"\[tool:([^:\]]+):(\{[^\]]*\})\]")
_THINK = re.compile(r"\[think:([^\]]*)\]")
_FAIL = re.compile(r"\[fail:(\d{3})\]")
_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
REFUSAL_TEXT = "I will not"
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4a"


def signature(thinking: str) -> str:
    """What this server signs a thinking block with (and checks when it comes back)."""
    return base64.b64encode(f"signed:{thinking}".encode()).decode()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def _words(text: str) -> int:
    return len(text.split())


def error(status: int, message: str | None = None) -> dict[str, Any]:
    kind = _ERRORS.get(status, "api_error")
    text = message or f"anthropic says {status}"
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_011"}


def refusal(body: dict[str, Any]) -> str | None:
    """Why Anthropic would refuse this body, or None."""
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages") or []
    if not messages or messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    used: set[str] = set()
    for number, message in enumerate(messages):
        if number and message["role"] == messages[number - 1]["role"]:
            return f"messages.{number}: roles must alternate"
        for block in message["content"] if isinstance(message["content"], list) else []:
            if block["type"] == "tool_use":
                used.add(block["id"])
            elif block["type"] == "tool_result" and block["tool_use_id"] not in used:
                return f"messages.{number}: unexpected `tool_use_id` in `tool_result` blocks"
            elif block["type"] == "thinking" and block["signature"] != signature(block["thinking"]):
                return f"messages.{number}: Invalid `signature` in `thinking` block"
            elif block["type"] == "text" and not block["text"]:
                return f"messages.{number}: text content blocks must be non-empty"
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        if not 1024 <= thinking.get("budget_tokens", 0) < body["max_tokens"]:
            return "thinking.budget_tokens: must be ≥ 1024 and less than max_tokens"
        if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """(content blocks, stop_reason, usage) for a valid body, from the last user turn's
    directives: [think:TEXT] a thinking block (with thinking on), [redacted] a redacted one,
    [tool:NAME:{JSON}] tool_use blocks, [length] / words past max_tokens → max_tokens,
    [refuse] → refusal, [cache] → cache read and write counts. A last turn of tool results is
    answered "done: <result>; …"."""
    messages = body["messages"]
    last = messages[-1]["content"]
    text = _text(last)
    results = [b for b in last if b.get("type") == "tool_result"] if isinstance(last, list) else []
    blocks: list[dict[str, Any]] = []
    thinking_on = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    if thinking_on and (m := _THINK.search(text)):
        blocks.append({"type": "thinking", "thinking": m[1], "signature": signature(m[1])})
    if thinking_on and "[redacted]" in text:
        blocks.append({"type": "redacted_thinking", "data": REDACTED})
    stop = "end_turn"
    if results:
        done = "; ".join(_text(r["content"]) for r in results)
        blocks.append({"type": "text", "text": f"done: {done}"})
    elif "[refuse]" in text:
        blocks.append({"type": "text", "text": REFUSAL_TEXT})
        stop = "refusal"
    elif calls := _TOOL.findall(text):
        blocks.append({"type": "text", "text": "Let me check."})
        for number, (name, args) in enumerate(calls):
            call = {"type": "tool_use", "id": f"toolu_{number:02d}", "name": name}
            blocks.append({**call, "input": json.loads(args)})
        stop = "tool_use"
    else:
        pieces = _WORD.findall(f"echo: {text}")
        if "[length]" in text or len(pieces) > body["max_tokens"]:
            pieces, stop = pieces[: min(len(pieces), 3, body["max_tokens"])], "max_tokens"
        blocks.append({"type": "text", "text": "".join(pieces).rstrip()})
    prompt = sum(_words(_text(m["content"])) + 3 for m in messages)
    out = sum(_words(b.get("text", "") + b.get("thinking", "")) for b in blocks)
    cached = "[cache]" in text
    usage = {
        "input_tokens": prompt,
        "cache_creation_input_tokens": 7 if cached else 0,
        "cache_read_input_tokens": 11 if cached else 0,
        "output_tokens": out,
    }
    return blocks, stop, usage


def events(body: dict[str, Any], text: str) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events of a streamed answer, as Anthropic sends them."""
    blocks, stop, usage = answer(body)
    start_usage = {**usage, "output_tokens": 1}
    message = {"id": "msg_01", "type": "message", "role": "assistant", "content": []}
    message |= {"model": body.get("model"), "stop_reason": None, "stop_sequence": None}
    out: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {**message, "usage": start_usage}}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(blocks):
        at = {"index": index}
        kind = block["type"]
        empty = {
            "text": {"type": "text", "text": ""},
            "thinking": {"type": "thinking", "thinking": "", "signature": ""},
            "tool_use": {**block, "input": {}},
            "redacted_thinking": block,
        }[kind]
        out.append(
            ("content_block_start", {"type": "content_block_start", **at, "content_block": empty})
        )
        pieces: list[dict[str, Any]] = []
        if kind == "text":
            pieces = [{"type": "text_delta", "text": w} for w in _WORD.findall(block["text"])]
        elif kind == "thinking":
            pieces = [
                {"type": "thinking_delta", "thinking": w} for w in _WORD.findall(block["thinking"])
            ]
            pieces.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            whole = json.dumps(block["input"])
            step = max(1, len(whole) // 3)
            pieces = [
                {"type": "input_json_delta", "partial_json": whole[i : i + step]}
                for i in range(0, len(whole), step)
            ]
        for piece in pieces:
            out.append(
                ("content_block_delta", {"type": "content_block_delta", **at, "delta": piece})
            )
        out.append(("content_block_stop", {"type": "content_block_stop", **at}))
        if "[stream-error]" in text and index == 0:
            out.append(("error", error(529, "Overloaded")))
            return out
    delta = {"stop_reason": stop, "stop_sequence": None}
    out.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": delta,
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    out.append(("message_stop", {"type": "message_stop"}))
    return out


class AnthropicUpstream(TestUpstream):
    """Serves `POST /v1/messages` on loopback; records every request like TestUpstream."""

    __test__ = False

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = json.loads(raw) if raw else {}
        with self._lock:
            self._requests.append(RecordedRequest(scope["method"], scope["path"], headers, body))
        if scope["path"] != "/v1/messages":
            return await _send_json(send, 404, error(404))
        if self.api_key is not None and headers.get("x-api-key") != self.api_key:
            return await _send_json(send, 401, error(401, "invalid x-api-key"))
        if headers.get("anthropic-version") != "2023-06-01":
            return await _send_json(send, 400, error(400, "anthropic-version: header required"))
        text = _text(body["messages"][-1]["content"]) if body.get("messages") else ""
        if m := _FAIL.search(text):
            message = f"anthropic says {m[1]} to key {headers.get('x-api-key')}"
            if "[leak]" in text:  # every form of the key, as tests/upstream.py's [leak]
                message += " " + " ".join(leak_forms(headers.get("x-api-key") or ""))
            return await _send_json(send, int(m[1]), error(int(m[1]), message))
        if "[overflow]" in text:
            overflow = "prompt is too long: 210000 tokens > 200000 maximum"
            return await _send_json(send, 400, error(400, overflow))
        if reason := refusal(body):
            return await _send_json(send, 400, error(400, reason))
        if not body.get("stream"):
            blocks, stop, usage = answer(body)
            message = {"id": "msg_01", "type": "message", "role": "assistant", "content": blocks}
            message |= {"model": body["model"], "stop_reason": stop, "stop_sequence": None}
            return await _send_json(send, 200, {**message, "usage": usage})
        headers_out = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers_out})
        for name, data in events(body, text):
            frame = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
