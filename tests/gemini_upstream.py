"""A deterministic Gemini API server for tests: `models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`, speaking the format as Google documents it, and refusing
what Gemini refuses (no key, a functionResponse naming no earlier call, and — when the request
sets a thinkingLevel, as for Gemini 3 — a model turn's calls without a thought signature)."""

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
_PATH = re.compile(r"^/v1beta/models/([^:]+):(generateContent|streamGenerateContent)$")
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
DUMMY = "skip_thought_signature_validator"


def signature(what: str) -> str:
    return base64.b64encode(f"gsig:{what}".encode()).decode()


def error(code: int, message: str | None = None, reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "message": message or f"gemini says {code}",
        "status": _STATUS.get(code, "UNKNOWN"),
    }
    if reason:
        body["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return {"error": body}


def _text(parts: list[dict[str, Any]]) -> str:
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))


def refusal(body: dict[str, Any]) -> str | None:
    contents = body.get("contents") or []
    if not contents:
        return "contents is not specified"
    strict = "thinkingLevel" in ((body.get("generationConfig") or {}).get("thinkingConfig") or {})
    called: set[str] = set()
    for number, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"contents[{number}].role: must be user or model"
        calls = [p for p in content["parts"] if "functionCall" in p]
        called |= {p["functionCall"]["name"] for p in calls}
        if strict and calls and "thoughtSignature" not in calls[0]:
            return f"Function call is missing a thought_signature in functionCall parts. contents[{number}]"
        for part in content["parts"]:
            sig = part.get("thoughtSignature")
            if sig is not None and sig != DUMMY and not base64.b64decode(sig).startswith(b"gsig:"):
                return f"contents[{number}]: Corrupted thought signature."
            response = part.get("functionResponse")
            if response is not None and response["name"] not in called:
                return f"contents[{number}]: functionResponse names no earlier functionCall"
    return None


def answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, Any] | None]:
    """(parts, finishReason, promptFeedback) from the last user content's directives."""
    contents = body["contents"]
    last = contents[-1]["parts"]
    text = _text(last)
    thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
    shows_thoughts = bool(thinking.get("includeThoughts"))
    signs = shows_thoughts or "thinkingLevel" in thinking
    results = [p["functionResponse"] for p in last if "functionResponse" in p]
    found: list[dict[str, Any]] = []
    if shows_thoughts and (m := _THINK.search(text)):
        found.append({"text": m[1], "thought": True})
    finish = "STOP"
    if "[blocked]" in text:
        return [], "", {"blockReason": "SAFETY"}
    if results:
        found.append({"text": "done: " + "; ".join(r["response"]["output"] for r in results)})
    elif calls := _TOOL.findall(text):
        for number, (name, args) in enumerate(calls):
            part: dict[str, Any] = {"functionCall": {"name": name, "args": json.loads(args)}}
            if signs and number == 0:
                part["thoughtSignature"] = signature(name)
            found.append(part)
    elif "[safety]" in text:
        found.append({"text": "I started"})
        finish = "SAFETY"
    else:
        pieces = _WORD.findall(f"echo: {text}")
        limit = (body.get("generationConfig") or {}).get("maxOutputTokens")
        if "[length]" in text or (isinstance(limit, int) and len(pieces) > limit):
            pieces, finish = pieces[:2], "MAX_TOKENS"
        found.append({"text": "".join(pieces).rstrip()})
        if signs:
            found.append({"text": "", "thoughtSignature": signature("answer")})
    return found, finish, None


def usage(body: dict[str, Any], found: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = sum(len(_text(c["parts"]).split()) + 2 for c in body["contents"])
    thoughts = sum(len(p["text"].split()) for p in found if p.get("thought"))
    answer_tokens = sum(len(p.get("text", "").split()) for p in found if not p.get("thought"))
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": answer_tokens,
        "thoughtsTokenCount": thoughts,
        "cachedContentTokenCount": 2 if "[cache]" in _text(body["contents"][-1]["parts"]) else 0,
        "totalTokenCount": prompt + answer_tokens + thoughts,
    }


def _response(
    parts: list[dict[str, Any]], finish: str | None, use: dict[str, Any]
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": use, "modelVersion": "gemini-test"}


class GeminiUpstream(TestUpstream):
    """Serves the Gemini API under `/v1beta` on loopback; records every request."""

    __test__ = False

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1beta"

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
        path = scope["path"]
        with self._lock:
            self._requests.append(RecordedRequest(scope["method"], path, headers, body))
        route = _PATH.match(path)
        if route is None:
            return await _send_json(send, 404, error(404))
        streamed = route[2] == "streamGenerateContent"
        if streamed and scope["query_string"] != b"alt=sse":
            return await _send_json(send, 400, error(400, "streaming needs alt=sse here"))
        if self.api_key is not None and headers.get("x-goog-api-key") != self.api_key:
            return await _send_json(
                send, 403, error(403, "Method doesn't allow unregistered callers.")
            )
        if reason := refusal(body):
            return await _send_json(send, 400, error(400, reason))
        text = _text(body["contents"][-1]["parts"])
        if m := _FAIL.search(text):
            code = int(m[1])
            message = f"gemini says {code} to {self.api_key}"
            if "[leak]" in text:  # every form of the key, as tests/upstream.py's [leak]
                message += " " + " ".join(leak_forms(headers.get("x-goog-api-key") or ""))
            return await _send_json(send, code, error(code, message))
        if "[badkey]" in text:
            bad = error(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
            return await _send_json(send, 400, bad)
        if "[overflow]" in text:
            too_long = "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."
            return await _send_json(send, 400, error(400, too_long))
        found, finish, feedback = answer(body)
        use = usage(body, found)
        if feedback is not None:
            return await _send_json(send, 200, {"promptFeedback": feedback, "usageMetadata": use})
        if not streamed:
            return await _send_json(send, 200, _response(found, finish, use))
        chunks = []
        for part in found:
            words = (
                _WORD.findall(part["text"])
                if part.get("text") and not part.get("thoughtSignature")
                else [None]
            )
            for word in words:
                piece = part if word is None else {**part, "text": word}
                chunks.append(_response([piece], None, use))
        chunks[-1]["candidates"][0]["finishReason"] = finish
        if "[stream-error]" in text:
            chunks = [chunks[0], error(503, "The model is overloaded. Please try again later.")]
        out = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        for chunk in chunks:
            frame = f"data: {json.dumps(chunk)}\r\n\r\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
