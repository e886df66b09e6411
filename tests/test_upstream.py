"""Tests for the fake upstream model server, so gateway tests can rely on its behaviour."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

try:
    from tests.upstream import TestUpstream
except ImportError:  # `tests` is not a package when pytest puts tests/ itself on sys.path
    from upstream import TestUpstream  # type: ignore[no-redef,import-not-found,unused-ignore]


@pytest.fixture(scope="module")
def upstream() -> Iterator[TestUpstream]:
    server = TestUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def client(upstream: TestUpstream) -> OpenAI:
    return OpenAI(base_url=upstream.base_url, api_key="x", max_retries=0)


def _ask(client: OpenAI, text: str, **kw: Any) -> Any:
    messages = [{"role": "user", "content": text}]
    return client.chat.completions.create(model="m1", messages=messages, **kw)  # type: ignore[arg-type]


def _sse(upstream: TestUpstream, text: str, **kw: Any) -> list[str]:
    """Raw `data:` payloads of a streamed completion, read with httpx."""
    body = {"model": "m1", "messages": [{"role": "user", "content": text}], "stream": True, **kw}
    with httpx.stream("POST", f"{upstream.base_url}/chat/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        return [line[6:] for line in r.iter_lines() if line.startswith("data: ")]


def _chunks(upstream: TestUpstream, text: str, **kw: Any) -> list[dict[str, Any]]:
    payloads = _sse(upstream, text, **kw)
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


def test_echo_shape_and_usage(client: OpenAI) -> None:
    r = _ask(client, "hello there world")
    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert r.model == "m1"
    choice = r.choices[0]
    assert choice.message.content == "echo: hello there world"
    assert choice.message.refusal is None
    assert choice.finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (3 + 3, 4)
    assert r.usage.total_tokens == 10
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details.reasoning_tokens == 0


def test_uses_last_user_message_and_text_parts(client: OpenAI) -> None:
    messages = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "echo: first"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "a b"}, {"type": "text", "text": " c"}],
        },
    ]
    r = client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    assert r.choices[0].message.content == "echo: a b c"
    assert r.usage is not None
    assert r.usage.prompt_tokens == 2 + 1 + 2 + 3 + 4 * 3


@pytest.mark.parametrize("code", [400, 401, 404, 429, 500])
def test_fail(client: OpenAI, code: int) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        _ask(client, f"please [fail:{code}]")
    assert info.value.status_code == code
    error = info.value.response.json()["error"]
    assert error["message"] == f"upstream says {code}"
    assert set(error) == {"message", "type", "param", "code"}


def test_fail_streaming(upstream: TestUpstream) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "[fail:503]"}], "stream": True}
    r = httpx.post(f"{upstream.base_url}/chat/completions", json=body)
    assert r.status_code == 503
    assert r.json()["error"]["message"] == "upstream says 503"


def test_tool_calls(client: OpenAI) -> None:
    r = _ask(client, 'go [tool:get_weather:{"city": "Paris"}] [tool:get_time:{}]')
    msg = r.choices[0].message
    assert msg.content is None
    assert r.choices[0].finish_reason == "tool_calls"
    calls = [(c.id, c.type, c.function.name, c.function.arguments) for c in msg.tool_calls or []]
    assert calls == [
        ("call_0", "function", "get_weather", '{"city": "Paris"}'),
        ("call_1", "function", "get_time", "{}"),
    ]
    assert r.usage is not None
    assert r.usage.completion_tokens == 3


def test_reasoning(upstream: TestUpstream, client: OpenAI) -> None:
    r = _ask(client, "think [reasoning:step one then two]")
    assert r.choices[0].message.model_extra == {"reasoning_content": "step one then two"}
    assert r.choices[0].message.content == "echo: think [reasoning:step one then two]"
    assert r.usage is not None
    assert r.usage.completion_tokens_details.reasoning_tokens == 4


def test_refuse(client: OpenAI) -> None:
    r = _ask(client, "[refuse]")
    assert r.choices[0].message.content is None
    assert r.choices[0].message.refusal == "I can't help with that."
    assert r.choices[0].finish_reason == "stop"


def test_length_directive(client: OpenAI) -> None:
    r = _ask(client, "[length]")
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("partial", "length")


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_truncates(client: OpenAI, param: str) -> None:
    r = _ask(client, "one two three four", **{param: 3})
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("echo: one two", "length")
    r = _ask(client, "one two", **{param: 3})
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("echo: one two", "stop")


def test_garbage(upstream: TestUpstream) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "[garbage]"}]}
    r = httpx.post(f"{upstream.base_url}/chat/completions", json=body)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_models(client: OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["test-model", "org/Model-7B", "dead-listed"]


def test_unknown_path_is_404(upstream: TestUpstream) -> None:
    assert httpx.get(f"{upstream.base_url}/nope").status_code == 404


def test_records_requests(upstream: TestUpstream) -> None:
    upstream.clear()
    OpenAI(base_url=upstream.base_url, api_key="sk-secret").chat.completions.create(
        model="m2", messages=[{"role": "user", "content": "hi"}], temperature=0.5
    )
    httpx.get(f"{upstream.base_url}/models", headers={"X-Custom": "yes"})
    first, second = upstream.requests
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer sk-secret"
    assert first.body["model"] == "m2"
    assert first.body["temperature"] == 0.5
    assert upstream.last_request() == second
    assert (second.method, second.path, second.body) == ("GET", "/v1/models", {})
    assert second.headers["x-custom"] == "yes"
    upstream.clear()
    assert upstream.requests == []


def test_stream_text_and_usage(upstream: TestUpstream, client: OpenAI) -> None:
    chunks = _chunks(upstream, "stream me please", stream_options={"include_usage": True})
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]
    assert "".join(deltas) == "echo: stream me please"
    assert len([d for d in deltas if d]) == 4
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    stream = _ask(client, "via sdk", stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: via sdk"


def test_stream_without_usage(upstream: TestUpstream) -> None:
    chunks = _chunks(upstream, "hi")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


def test_stream_reasoning_then_content(upstream: TestUpstream) -> None:
    chunks = _chunks(upstream, "[reasoning:a b c] x")
    deltas = [c["choices"][0]["delta"] for c in chunks]
    reasoning = [d["reasoning_content"] for d in deltas if "reasoning_content" in d]
    assert "".join(reasoning) == "a b c"
    kinds = [k for d in deltas for k in d if k in ("reasoning_content", "content") and d[k]]
    assert kinds == ["reasoning_content"] * 3 + ["content"] * 5


def test_stream_tool_calls(upstream: TestUpstream, client: OpenAI) -> None:
    args = '{"city": "Paris", "unit": "c"}'
    chunks = _chunks(upstream, f"[tool:get_weather:{args}][tool:noop:{{}}]")
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[:-1][1:]]
    assert calls[0] == {
        "index": 0,
        "id": "call_0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    fragments = [c["function"]["arguments"] for c in calls if c["index"] == 0]
    assert len(fragments) == 4
    assert "".join(fragments) == args
    assert calls[4]["id"] == "call_1"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    stream = _ask(client, f"[tool:get_weather:{args}]", stream=True)
    sdk_args = "".join(
        tc.function.arguments or ""
        for c in stream
        for tc in c.choices[0].delta.tool_calls or []
        if tc.function
    )
    assert sdk_args == args


def test_stream_refuse(upstream: TestUpstream) -> None:
    chunks = _chunks(upstream, "[refuse]")
    text = "".join(c["choices"][0]["delta"].get("refusal") or "" for c in chunks)
    assert text == "I can't help with that."


def test_stream_drop(upstream: TestUpstream) -> None:
    received: list[str] = []

    def read() -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": "x [drop]"}], "stream": True}
        with httpx.stream("POST", f"{upstream.base_url}/chat/completions", json=body) as r:
            received.extend(r.iter_lines())

    with pytest.raises(httpx.RemoteProtocolError):
        read()
    payloads = [json.loads(line[6:]) for line in received if line.startswith("data: ")]
    assert [p["choices"][0]["delta"].get("content") for p in payloads] == ["", "echo: ", "x "]


def test_stream_malformed(upstream: TestUpstream) -> None:
    payloads = _sse(upstream, "[malformed]")
    assert len(payloads) == 2
    json.loads(payloads[0])
    assert payloads[1] == "{not json"


def test_sleep_does_not_block(client: OpenAI) -> None:
    results: dict[str, float] = {}

    def slow() -> None:
        _ask(client, "[sleep:600]")
        results["slow"] = time.monotonic()

    start = time.monotonic()
    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.05)
    assert _ask(client, "fast").choices[0].message.content == "echo: fast"
    results["fast"] = time.monotonic()
    thread.join()
    assert results["fast"] - start < 0.4
    assert results["slow"] - start >= 0.6


def test_stream_sleep_between_chunks(upstream: TestUpstream) -> None:
    start = time.monotonic()
    payloads = _sse(upstream, "[sleep:50]")
    assert len(payloads) == 5  # role, 2 words, finish, [DONE]
    assert time.monotonic() - start >= 4 * 0.05


def test_delay_ms_and_port() -> None:
    with TestUpstream(delay_ms=200) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        start = time.monotonic()
        assert _ask(OpenAI(base_url=server.base_url, api_key="x"), "hi").choices
        assert time.monotonic() - start >= 0.2


def test_stop_does_not_wait_for_sleeping_requests() -> None:
    server = TestUpstream().start()
    outcome: list[int | str] = []

    def slow() -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": "[sleep:5000]"}]}
        try:
            outcome.append(httpx.post(f"{server.base_url}/chat/completions", json=body).status_code)
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.2)
    start = time.monotonic()
    server.stop()
    thread.join()
    assert time.monotonic() - start < 1
    assert outcome == [500]
