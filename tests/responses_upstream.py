"""A deterministic Responses API server for tests (`POST /v1/responses`, whole and streamed
with OpenAI's events), standing in for OpenAI, vLLM or another Rapport behind an
`openai-responses` route. Like OpenAI with `store: false`, it keeps nothing: it refuses a
stored request, a reasoning item whose encrypted content it did not make, and an output with
no call before it in the same input."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.upstream import Receive, RecordedRequest, Send, TestUpstream, _send_json, leak_forms

_WORD = re.compile(r"\S+\s*")
_TOOL = re.compile(r"\[tool:([^:\]]+):(\{[^\]]*\})\]")
_REASON = re.compile(r"\[reason:([^\]]*)\]")
_SEARCH = re.compile(r"\[search:([^\]]*)\]")
_FAIL = re.compile(r"\[fail:(\d{3})\]")
_KINDS = {400: "invalid_request_error", 401: "invalid_api_key", 429: "rate_limit_exceeded"}


def sealed(text: str) -> str:
    return "enc:" + base64.b64encode(text.encode()).decode()


def error(status: int, message: str | None = None, code: str | None = None) -> dict[str, Any]:
    kind = _KINDS.get(status, "server_error")
    return {
        "error": {
            "message": message or f"responses says {status}",
            "type": kind,
            "param": None,
            "code": code or kind,
        }
    }


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content)


def refusal(body: dict[str, Any]) -> str | None:
    if body.get("store") is not False:
        return "this server keeps nothing: store must be false"
    called: set[str] = set()
    for number, item in enumerate(body.get("input") or []):
        if "id" in item and item.get("type") in (
            "message",
            "function_call",
            "function_call_output",
        ):
            return f"input[{number}].id: not found (nothing is stored)"
        if item.get("type") == "reasoning":
            ec = item.get("encrypted_content") or ""
            if not ec.startswith("enc:") or item.get("id") != "rs_up1":
                return f"input[{number}]: the encrypted content could not be verified"
        if item.get("type") == "function_call":
            called.add(item["call_id"])
        if item.get("type") == "function_call_output" and item["call_id"] not in called:
            return f"No tool call found for function call output with call_id {item['call_id']}."
    return None


def output(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """(output items, incomplete reason) from the last user message's directives."""
    items = body["input"]
    users = [i for i in items if i.get("type") == "message" and i["role"] == "user"]
    text = _text(users[-1]["content"]) if users else ""
    results = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        results.insert(0, _text(item["output"]))
    out: list[dict[str, Any]] = []
    if (m := _REASON.search(text)) and "reasoning.encrypted_content" in (body.get("include") or []):
        summary = [{"type": "summary_text", "text": m[1]}]
        out.append(
            {
                "id": "rs_up1",
                "type": "reasoning",
                "summary": summary,
                "encrypted_content": sealed(m[1]),
            }
        )
    searches = {t.get("type") for t in body.get("tools") or []} & {
        "web_search",
        "web_search_preview",
    }
    if (m := _SEARCH.search(text)) and searches:
        action = {"type": "search", "query": m[1]}
        out.append(
            {"id": "ws_up1", "type": "web_search_call", "status": "completed", "action": action}
        )
    reason = None
    if results:
        answer = "done: " + "; ".join(results)
    elif calls := _TOOL.findall(text):
        for number, (name, args) in enumerate(calls):
            out.append(
                {
                    "id": f"fc_up{number}",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": f"call_up{number}",
                    "name": name,
                    "arguments": args,
                }
            )
        return out, None
    elif "[length]" in text:
        answer, reason = "partial", "max_output_tokens"
    else:
        answer = f"echo: {text}"
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": answer}
    status = "incomplete" if reason else "completed"
    out.append(
        {
            "id": "msg_up1",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [part],
        }
    )
    return out, reason


def response(
    body: dict[str, Any], items: list[dict[str, Any]], reason: str | None
) -> dict[str, Any]:
    words = sum(
        len(_text(i.get("content") or "").split())
        for i in body["input"]
        if i.get("type") == "message"
    )
    made = sum(len(p.get("text", "").split()) for i in items for p in i.get("content") or [])
    usage = {
        "input_tokens": words,
        "input_tokens_details": {"cached_tokens": 1},
        "output_tokens": made,
        "output_tokens_details": {
            "reasoning_tokens": 3 if items and items[0]["type"] == "reasoning" else 0
        },
        "total_tokens": words + made,
    }
    return {
        "id": "resp_up1",
        "object": "response",
        "status": "incomplete" if reason else "completed",
        "incomplete_details": {"reason": reason} if reason else None,
        "model": body.get("model"),
        "output": items,
        "usage": usage,
        "error": None,
    }


def events(body: dict[str, Any], text: str) -> list[dict[str, Any]]:
    items, reason = output(body)
    shell = {**response(body, [], None), "status": "in_progress", "usage": None}
    out: list[dict[str, Any]] = [
        {"type": "response.created", "response": shell},
        {"type": "response.in_progress", "response": shell},
    ]
    for index, item in enumerate(items):
        at = {"output_index": index, "item_id": item["id"]}
        kind = item["type"]
        started = {**item, "status": "in_progress"}
        if kind == "message":
            started["content"] = []
        if kind == "function_call":
            started["arguments"] = ""
        out.append({"type": "response.output_item.added", "output_index": index, "item": started})
        if kind == "message":
            whole = item["content"][0]["text"]
            out.append(
                {
                    "type": "response.content_part.added",
                    **at,
                    "content_index": 0,
                    "part": {**item["content"][0], "text": ""},
                }
            )
            for word in _WORD.findall(whole):
                out.append(
                    {
                        "type": "response.output_text.delta",
                        **at,
                        "content_index": 0,
                        "delta": word,
                        "logprobs": [],
                    }
                )
            out.append(
                {
                    "type": "response.output_text.done",
                    **at,
                    "content_index": 0,
                    "text": whole,
                    "logprobs": [],
                }
            )
            out.append(
                {
                    "type": "response.content_part.done",
                    **at,
                    "content_index": 0,
                    "part": item["content"][0],
                }
            )
        elif kind == "function_call":
            out.append(
                {"type": "response.function_call_arguments.delta", **at, "delta": item["arguments"]}
            )
            out.append(
                {
                    "type": "response.function_call_arguments.done",
                    **at,
                    "arguments": item["arguments"],
                }
            )
        elif kind == "web_search_call":
            out.append({"type": "response.web_search_call.searching", **at})
        out.append({"type": "response.output_item.done", "output_index": index, "item": item})
    if "[failed]" in text:
        failed = {
            **shell,
            "status": "failed",
            "error": {"code": "server_error", "message": "it broke"},
        }
        out.append({"type": "response.failed", "response": failed})
    else:
        kind = "response.incomplete" if reason else "response.completed"
        out.append({"type": kind, "response": response(body, items, reason)})
    return [{**event, "sequence_number": number} for number, event in enumerate(out)]


class ResponsesUpstream(TestUpstream):
    """Serves `POST /v1/responses` on loopback; records every request."""

    __test__ = False

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
        if scope["path"] != "/v1/responses":
            return await _send_json(send, 404, error(404))
        users = [
            i for i in body.get("input") or [] if i.get("type") == "message" and i["role"] == "user"
        ]
        text = _text(users[-1]["content"]) if users else ""
        if m := _FAIL.search(text):
            message = f"responses says {m[1]} to {headers.get('authorization')}"
            if "[leak]" in text:  # every form of the key, as tests/upstream.py's [leak]
                key = headers.get("authorization", "").removeprefix("Bearer ")
                message += " " + " ".join(leak_forms(key))
            return await _send_json(send, int(m[1]), error(int(m[1]), message))
        if "[overflow]" in text:
            too_long = "Your input exceeds the context window of this model."
            return await _send_json(send, 400, error(400, too_long, "context_length_exceeded"))
        if reason := refusal(body):
            return await _send_json(send, 400, error(400, reason))
        if not body.get("stream"):
            items, incomplete = output(body)
            return await _send_json(send, 200, response(body, items, incomplete))
        out = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        for event in events(body, text):
            frame = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
