"""Deterministic OpenAI-compatible chat-completions server that plays the "real model" in tests."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import quote

import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

REFUSAL = "I can't help with that."
MODELS = {
    "object": "list",
    "data": [
        {"id": "test-model", "object": "model", "created": 0, "owned_by": "rapport-tests"},
        # A name with a slash, as vLLM and llama.cpp list Hugging Face models.
        {"id": "org/Model-7B", "object": "model", "created": 1700000000, "owned_by": "org"},
        # A name the glob route `dead-*` takes: listed upstream, never served by it.
        {"id": "dead-listed", "object": "model", "created": 0, "owned_by": "rapport-tests"},
    ],
}
# What vLLM answers when the prompt does not fit the model ([overflow]).
OVERFLOW_ERROR = {
    "object": "error",
    "message": "This model's maximum context length is 4096 tokens. However, you requested "
    "5120 tokens (5000 in the messages, 120 in the completion). Please reduce the length of "
    "the messages or completion.",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}
_FAIL = re.compile(r"\[fail:(\d{3})\]")
_SLEEP = re.compile(r"\[sleep:(\d+)\]")
_TRICKLE = re.compile(r"\[trickle:(\d+)\]")
_TOOL = re.compile(r"\[tool:([^:\]]+):([^\]]*)\]")
_REASONING = re.compile(r"\[reasoning:([^\]]*)\]")
_TIER = re.compile(r"\[tier:([a-z]+)\]")
_WORD = re.compile(r"\S+\s*")
# Sent on every answer, so a test can tell whether a log line shows response headers.
HEADER_MARKER = "upstream-header-marker-5d1c"
_MARKER = (b"x-upstream-marker", HEADER_MARKER.encode())
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), _MARKER]
_ERROR_KINDS = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class _DropConnection(Exception):
    """Raised so uvicorn closes the socket (or sends a bare 500 before headers) and moves on."""


class _QuietDrops(logging.Filter):
    """Hide uvicorn's traceback for deliberate `[drop]` disconnects; real errors still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is _DropConnection)


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the upstream saw it, so tests can assert what the gateway sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    # The client's port: two requests with the same port came over one kept-alive connection.
    client_port: int = 0


@dataclass
class _Plan:
    """The answer a request's directives call for, shared by the streaming and plain paths."""

    content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)
    finish: str = "stop"
    status: int = 200
    sleep_s: float = 0.0
    trickle_s: float = 0.0
    drop: bool = False
    malformed: bool = False
    garbage: bool = False
    wrong_types: bool = False
    overflow: bool = False
    service_tier: str | None = None
    trace: bool = False
    pieces: list[str] | None = None  # the content's stream chunks, when not one per word
    leak: bool = False


def _words(text: str | None) -> int:
    return len(text.split()) if text else 0


def _parts(content: Any) -> list[str]:
    """The text pieces of message content: a plain string, or each `text` part of a list."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
    return []


def _prompt_tokens(messages: list[Any]) -> int:
    """Words across every string/text part of every message, plus 3 per message."""
    contents = [m.get("content") if isinstance(m, dict) else None for m in messages]
    return sum(3 + sum(_words(t) for t in _parts(c)) for c in contents)


def _structured_answer(body: dict[str, Any], text: str) -> str | None:
    """With a `response_format`, the answer is JSON as a well-behaved model would write it: an
    instance of the json_schema (see `schema_instance`), or `{"echo": text}` for json_object
    without a schema."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object":
        schema = response_format.get("schema")  # llama-cpp-python's form of a schema
        return json.dumps(schema_instance(schema, schema) if schema else {"echo": text})
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return json.dumps(schema_instance(schema, schema))
    return None


def schema_instance(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A deterministic instance of a JSON schema: every property present; a string is
    "<its property's name>"; integers 1, numbers 1.5, booleans true; arrays one element; enums and
    anyOf their first choice; `$ref`s into `$defs` followed."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return schema_instance(root.get("$defs", root.get("definitions", {}))[name], root)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "anyOf" in schema:
        return schema_instance(schema["anyOf"][0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: _named(name, schema_instance(sub, root)) for name, sub in properties.items()}
    if kind == "array":
        return [schema_instance(schema.get("items") or {}, root)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), "value")


def _named(name: str, value: Any) -> Any:
    return f"<{name}>" if value == "value" else value


def _trailing_tool_results(messages: list[Any]) -> list[str]:
    """The contents of the tool messages that end the conversation, in order: a model that has
    just been given its tools' results answers with them rather than calling again."""
    results: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.insert(0, "".join(_parts(message.get("content"))))
    return results


def _tool_directives(text: str) -> list[tuple[str, str]]:
    """Each `[tool:NAME:ARGS]` as (NAME, ARGS). ARGS that start a JSON value are read as one,
    so they may hold `]` (`{"command": ["ls"]}`); anything else runs to the first `]`."""
    found: list[tuple[str, str]] = []
    position = 0
    while (match := _TOOL.search(text, position)) is not None:
        name, start = match.group(1), match.start(2)
        try:
            _, end = _JSON.raw_decode(text, start)
        except ValueError:
            end = -1
        if end > start and text[end : end + 1] == "]":
            found.append((name, text[start:end]))
            position = end + 1
        else:
            found.append((name, match.group(2)))
            position = match.end()
    return found


_JSON = json.JSONDecoder()


def plan(body: dict[str, Any]) -> _Plan:
    """Decide the answer from directives in the text of the last user message.

    Default: content "echo: <text>" (directives included verbatim), finish "stop", truncated
    to `max_completion_tokens`/`max_tokens` words (finish "length"). Directives: [fail:CODE],
    [sleep:MS], [trickle:MS] (the answer's bytes one at a time, MS apart: every read is quick,
    the answer never ends in practice), [tool:NAME:JSON] (repeatable; the JSON may hold `]`), [reasoning:TEXT], [refuse], [length],
    [drop] and [malformed] (streaming only), [garbage] and [wrong-types] (non-streaming only:
    a body that is not JSON, and JSON whose fields have the wrong types), [overflow] (a
    400 context-length error worded as vLLM words it), [tier:NAME] (the answer reports that
    service_tier, as OpenAI reports the tier it used), [trace] (an error message ending in a
    stack trace, as llama-cpp-python sends them), [leak] (the answer, each tool call's arguments
    or the error message quote the key the request carried and `TestUpstream.leaks`, in every
    form `leak_forms` makes, each also split across two chunks), [long-call-ids] (tool call ids as long as
    llama-cpp-python's). When the messages end with tool results, the answer is
    "done: <result>; <result>…" instead; with a `response_format` it is JSON
    (`_structured_answer`). A body with `logprobs: true` gets `token_logprobs` for each content
    word (a word is a token here).
    """
    messages = body.get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    text = "".join(_parts(users[-1].get("content"))) if users else ""
    p = _Plan(drop="[drop]" in text, malformed="[malformed]" in text, garbage="[garbage]" in text)
    p.overflow = "[overflow]" in text
    p.wrong_types = "[wrong-types]" in text
    p.trace = "[trace]" in text
    p.leak = "[leak]" in text
    if m := _FAIL.search(text):
        p.status = int(m.group(1))
    if m := _SLEEP.search(text):
        p.sleep_s = int(m.group(1)) / 1000
    if m := _TRICKLE.search(text):
        p.trickle_s = int(m.group(1)) / 1000
    if m := _REASONING.search(text):
        p.reasoning = m.group(1)
    if m := _TIER.search(text):
        p.service_tier = m.group(1)
    tools = _tool_directives(text)
    results = _trailing_tool_results(messages)
    if results:
        p.content = "done: " + "; ".join(results)
    elif "[refuse]" in text:
        p.refusal = REFUSAL
    elif tools:
        p.tool_calls = [(f"call_{i}", name, args) for i, (name, args) in enumerate(tools)]
        if "[long-call-ids]" in text:  # as llama-cpp-python makes them: 50 characters + name
            suffix = "_cmpl-7fa0ad1f-99a3-4ef2-9690-aff3705d8651"
            p.tool_calls = [
                (f"call__{i}_{n}{suffix}", n, a) for i, (_, n, a) in enumerate(p.tool_calls)
            ]
        p.finish = "tool_calls"
    elif "[length]" in text:
        p.content, p.finish = "partial", "length"
    elif (document := _structured_answer(body, text)) is not None:
        p.content = document
    else:
        p.content = f"echo: {text}"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        pieces = _WORD.findall(p.content)
        if isinstance(limit, int) and len(pieces) > limit:
            p.content, p.finish = "".join(pieces[:limit]).rstrip(), "length"
    return p


def _usage(body: dict[str, Any], p: _Plan) -> dict[str, Any]:
    prompt = _prompt_tokens(body.get("messages") or [])
    completion = _words(p.content) + _words(p.refusal)
    completion += sum(_words(args) for _, _, args in p.tool_calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": _words(p.reasoning)},
    }


def _thirds(s: str) -> list[str]:
    """Split tool arguments into ~3 fragments, like a model emitting them token by token."""
    step = max(1, -(-len(s) // 3))
    return [s[i : i + step] for i in range(0, len(s), step)]


def _deltas(p: _Plan) -> list[dict[str, Any]]:
    """The ordered stream deltas for a plan: role, reasoning, content/refusal, tool calls."""
    out: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
    out += [{"reasoning_content": w} for w in _WORD.findall(p.reasoning or "")]
    content = p.pieces if p.pieces is not None else _WORD.findall(p.content or "")
    out += [{"content": w} for w in content]
    out += [{"refusal": w} for w in _WORD.findall(p.refusal or "")]
    for i, (call_id, name, args) in enumerate(p.tool_calls):
        fn = {"name": name, "arguments": ""}
        out.append(
            {"tool_calls": [{"index": i, "id": call_id, "type": "function", "function": fn}]}
        )
        out += [{"tool_calls": [{"index": i, "function": {"arguments": a}}]} for a in _thirds(args)]
    return out


def token_logprobs(token: str, position: int, top: int) -> dict[str, Any]:
    """Deterministic logprobs for the token at `position`: its own logprob is -(position+1)/10,
    and its `top` alternatives are the token itself then `<token>#k`, each 1.0 less likely."""
    logprob = -(position + 1) / 10
    alternatives = [token] + [f"{token.strip()}#{k}" for k in range(1, top)]
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": t, "logprob": logprob - k, "bytes": list(t.encode())}
            for k, t in enumerate(alternatives[:top])
        ],
    }


def _logprobs(body: dict[str, Any], tokens: list[str], first: int = 0) -> dict[str, Any] | None:
    """chat-completions `choice.logprobs` for these content tokens, when the body asked."""
    if not body.get("logprobs"):
        return None
    top = int(body.get("top_logprobs") or 0)
    content = [token_logprobs(t, first + i, top) for i, t in enumerate(tokens)]
    return {"content": content, "refusal": None}


# What llama-cpp-python appends to its error messages ([trace]).
STACK_TRACE = (
    '\n\n  File "/srv/llama_cpp/server/app.py", line 376, in create_chat_completion\n'
    "    POST /v1/chat/completions"
)


def _error(status: int, trace: bool = False) -> dict[str, Any]:
    kind, code = _ERROR_KINDS.get(status, ("server_error", "server_error"))
    message = f"upstream says {status}" + (STACK_TRACE if trace else "")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def leak_forms(secret: str) -> list[str]:
    """The forms a careless upstream quotes a secret in: whole, in every case, cut short,
    base64 (standard and URL-safe) behind 0, 1 and 2 other bytes, and URL-encoded."""
    found = [secret, secret.upper(), secret.lower(), secret.swapcase(), secret[:-4]]
    for before in (b"", b"u", b"us"):
        raw = before + secret.encode() + b"!tail"
        found += [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    found.append(quote(secret, safe=""))
    return found


def leak_pieces(secrets: list[str]) -> list[str]:
    """Stream chunks quoting every form of every secret, each secret also split in two."""
    pieces = ["Here is what I was given:"]
    for secret in secrets:
        middle = len(secret) // 2
        pieces += [" split ", secret[:middle], secret[middle:]]
        pieces += [piece for form in leak_forms(secret) for piece in (" then ", form)]
    return [*pieces, " (the end)"]


def received_keys(headers: dict[str, str]) -> list[str]:
    """The credentials a request carried (OpenAI's bearer, Anthropic's and Gemini's keys)."""
    keys = [headers.get("x-api-key", ""), headers.get("x-goog-api-key", "")]
    keys.append(headers.get("authorization", "").removeprefix("Bearer "))
    return [key for key in keys if key]


class TestUpstream:
    """A fake model server on 127.0.0.1 in a daemon thread; records every request it gets."""

    __test__ = False

    def __init__(
        self, port: int = 0, delay_ms: int = 0, host: str = "127.0.0.1", record: bool = True
    ) -> None:
        """`record=False` skips request recording, so long benchmark runs don't grow memory."""
        self.host, self.delay_ms, self.record = host, delay_ms, record
        self._port = port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._ids = 0
        # [leak] quotes these too, besides the key each request carried (a sealing key, say).
        self.leaks: list[str] = []
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot copy, safe to read while the server thread appends."""
        with self._lock:
            return list(self._requests)

    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self._requests[-1]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def _config(self, **kw: Any) -> uvicorn.Config:
        return uvicorn.Config(
            self, interface="asgi3", lifespan="off", access_log=False, log_level="warning", **kw
        )

    def start(self) -> Self:
        """Bind now (so the port is known and connections queue), serve from a thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(1024)
        self._port = sock.getsockname()[1]
        server = self._server = uvicorn.Server(self._config(timeout_graceful_shutdown=1))

        async def serve() -> None:
            self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
            await server.serve(sockets=[sock])

        self._thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test upstream failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop promptly: requests still sleeping are dropped rather than waited for."""
        if self._server and self._thread:
            if self._loop and self._stopping:
                self._loop.call_soon_threadsafe(self._stopping.set)
            self._server.should_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the foreground (benchmarks); Ctrl-C stops it."""
        uvicorn.Server(self._config(host=self.host, port=self._port)).run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: plain ASGI keeps per-request overhead tiny for benchmarks."""
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            msg = await receive()
            raw += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        path, method = scope["path"], scope["method"]
        if self.record:
            with self._lock:
                client_port = (scope.get("client") or ("", 0))[1]
                recorded = RecordedRequest(method, path, headers, body or {}, client_port)
                self._requests.append(recorded)
        if path == "/v1/models" and method == "GET":
            return await _send_json(send, 200, MODELS)
        if path != "/v1/chat/completions" or method != "POST":
            return await _send_json(send, 404, _error(404))
        if not isinstance(body, dict):
            return await _send_json(send, 400, _error(400))
        await self._complete(body, receive, send, headers)

    def _leak(self, p: _Plan, secrets: list[str]) -> None:
        """[leak]: the answer, each tool call's arguments and any error quote `secrets`."""
        p.pieces = leak_pieces(secrets)
        leaked = "".join(p.pieces)
        if p.tool_calls:
            arguments = json.dumps({"leaked": leaked})
            p.tool_calls = [(call_id, name, arguments) for call_id, name, _ in p.tool_calls]
            p.pieces = None
        elif p.content is not None:
            p.content = leaked
        else:
            p.pieces = None

    async def _pause(self, seconds: float, receive: Receive) -> None:
        """Sleep without blocking other requests, but give up (drop the connection) as soon as
        the client hangs up or the server stops, so abandoned `[sleep]`s never linger."""
        if seconds <= 0:
            return
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(receive())}  # disconnect
        if self._stopping:
            waiters.add(asyncio.ensure_future(self._stopping.wait()))
        done, pending = await asyncio.wait(
            waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        if done:
            raise _DropConnection

    async def _trickle(
        self,
        payload: bytes,
        headers: list[tuple[bytes, bytes]],
        seconds: float,
        receive: Receive,
        send: Send,
    ) -> None:
        """The answer one byte at a time, `seconds` apart, until the client hangs up."""
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(len(payload)):
            if i:
                await self._pause(seconds, receive)
            await send(
                {"type": "http.response.body", "body": payload[i : i + 1], "more_body": True}
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _complete(
        self, body: dict[str, Any], receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        p = plan(body)
        if p.leak:
            self._leak(p, received_keys(headers) + self.leaks)
        stream = bool(body.get("stream"))
        self._ids += 1
        base = {"id": f"chatcmpl-{self._ids:08d}", "created": int(time.time())}
        base["model"] = body.get("model", "test-model")
        await self._pause(self.delay_ms / 1000 + (0 if stream else p.sleep_s), receive)
        if p.overflow:
            return await _send_json(send, 400, OVERFLOW_ERROR)
        if p.status != 200:
            error = _error(p.status, p.trace)
            if p.leak:
                error["error"]["message"] += ": " + "".join(p.pieces or [])
            return await _send_json(send, p.status, error)
        if not stream:
            if p.garbage:
                return await _send(send, 200, b"<html>this is not json", "application/json")
            if p.wrong_types:  # JSON, but not a chat completion's shape
                return await _send_json(send, 200, {**base, "choices": "none", "usage": [1]})
            message: dict[str, Any] = {"role": "assistant", "content": p.content}
            message["refusal"] = p.refusal
            if p.reasoning is not None:
                message["reasoning_content"] = p.reasoning
            if p.tool_calls:
                message["tool_calls"] = [
                    {"id": c, "type": "function", "function": {"name": n, "arguments": a}}
                    for c, n, a in p.tool_calls
                ]
            tokens = _WORD.findall(p.content or "")
            choice = {
                "index": 0,
                "message": message,
                "logprobs": _logprobs(body, tokens),
                "finish_reason": p.finish,
            }
            result = {**base, "object": "chat.completion", "choices": [choice]}
            if p.service_tier:
                result["service_tier"] = p.service_tier
            result["usage"] = _usage(body, p)
            if p.trickle_s:
                json_headers = [(b"content-type", b"application/json")]
                return await self._trickle(_dumps(result), json_headers, p.trickle_s, receive, send)
            return await _send_json(send, 200, result)
        await self._stream(body, p, base, receive, send)

    async def _stream(
        self, body: dict[str, Any], p: _Plan, base: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        """Send SSE chunks one `send` at a time so clients see a real incremental stream."""
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if include_usage else {}
        base = {**base, "object": "chat.completion.chunk", "system_fingerprint": None}
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": None}
        chunks = []
        position = 0
        for d in _deltas(p):
            piece = {**choice, "delta": d}
            if isinstance(d.get("content"), str) and d["content"]:
                piece["logprobs"] = _logprobs(body, [d["content"]], position)
                position += 1
            chunks.append({**base, "choices": [piece], **extra})
        finish = {**choice, "delta": {}, "finish_reason": p.finish}
        chunks.append({**base, "choices": [finish], **extra})
        if include_usage:
            chunks.append({**base, "choices": [], "usage": _usage(body, p)})
        if p.service_tier:
            chunks[-1]["service_tier"] = p.service_tier
        lines = [b"data: %s\n\n" % _dumps(c) for c in chunks] + [b"data: [DONE]\n\n"]
        if p.malformed:
            lines = [*lines[:1], b"data: {not json\n\n"]
        elif p.drop:
            lines = lines[:3]
        if p.trickle_s:
            return await self._trickle(b"".join(lines), _SSE_HEADERS, p.trickle_s, receive, send)
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        for i, line in enumerate(lines):
            if i:
                await self._pause(p.sleep_s, receive)
            await send({"type": "http.response.body", "body": line, "more_body": True})
        if p.drop:
            raise _DropConnection
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    headers.append(_MARKER)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    await _send(send, status, _dumps(payload), "application/json")


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--delay-ms", type=int, default=0, help="fixed delay before every answer")
    args = parser.parse_args()
    TestUpstream(args.port, args.delay_ms, args.host, record=False).serve_forever()
