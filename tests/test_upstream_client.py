"""Both transports of the upstream client (aiohttp, httpcore) look the same to the providers:
the same answers, the same events, and every fault mapped to the same ProviderError."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.config import ModelRoute, UpstreamTransport
from app.providers.base import (
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.providers.upstream_client import upstream_client
from app.providers.upstream_http import (
    EVENT_STREAM_HEADERS,
    Endpoint,
    classify,
    upstream_message,
)
from tests.upstream import TestUpstream

KEY = "sk-upstream-client-test"
TRANSPORTS: list[UpstreamTransport] = ["aiohttp", "httpx"]


def status_error(answer: httpx.Response) -> Any:
    return classify(answer.status_code, upstream_message(answer))


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "test-model", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(params=TRANSPORTS)
async def endpoint(request: pytest.FixtureRequest) -> AsyncIterator[Endpoint]:
    client = upstream_client(request.param, httpx.Timeout(1.0, connect=1.0))
    route = ModelRoute(name="test-model", timeout_seconds=1.0)
    yield Endpoint(client, {"authorization": f"Bearer {KEY}"}, route, KEY)
    await client.aclose()


@pytest.fixture
def closing_server() -> Iterator[int]:
    """A port whose server accepts each connection and closes it without a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = False

    def serve() -> None:
        while not stop:
            with contextlib.suppress(TimeoutError):
                connection, _ = listener.accept()
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop = True
    thread.join()
    listener.close()


async def test_answers_and_headers_arrive(endpoint: Endpoint, upstream: TestUpstream) -> None:
    answer = await endpoint.post(f"{upstream.base_url}/chat/completions", chat("hi"), status_error)
    assert answer["choices"][0]["message"]["content"] == "echo: hi"
    seen = upstream.last_request()
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body["messages"] == [{"role": "user", "content": "hi"}]


async def test_a_request_is_made_as_build_request_would_make_it(endpoint: Endpoint) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    for events in (False, True):
        made = endpoint.request(url, b'{"a":1}', events=events)
        headers = endpoint.headers | (EVENT_STREAM_HEADERS if events else {})
        expected = endpoint.client.build_request(
            "POST", url, content=b'{"a":1}', headers=headers, timeout=endpoint.timeout
        )
        assert (made.method, made.url, made.content) == (expected.method, expected.url, b'{"a":1}')
        assert made.headers.multi_items() == expected.headers.multi_items()
        assert made.extensions == expected.extensions
    assert endpoint.request(url, b"{}").extensions is not made.extensions  # never shared


async def test_a_client_with_cookies_sends_them(endpoint: Endpoint) -> None:
    endpoint.client.cookies.set("affinity", "node-2", domain="127.0.0.1")
    made = endpoint.request("http://127.0.0.1:9/v1/chat/completions", b"{}")
    assert made.headers["cookie"] == "affinity=node-2"


async def test_a_stream_leaves_no_event_stream_headers_on_later_posts(
    endpoint: Endpoint, upstream: TestUpstream
) -> None:
    """`httpx_sse.aconnect_sse` added its headers to the dict it was given: every POST after the
    first stream asked for an event stream too."""
    url = f"{upstream.base_url}/chat/completions"
    [event async for event in endpoint.events(url, chat("x", stream=True), status_error)]
    assert upstream.last_request().headers["accept"] == "text/event-stream"
    await endpoint.post(url, chat("plain"), status_error)
    seen = upstream.last_request().headers
    assert seen["accept"] == "*/*"
    assert "cache-control" not in seen


async def test_connections_are_reused(endpoint: Endpoint, upstream: TestUpstream) -> None:
    url = f"{upstream.base_url}/chat/completions"
    for _ in range(5):
        await endpoint.post(url, chat("again"), status_error)
    peers = {request.client_port for request in upstream.requests[-5:]}
    assert len(peers) == 1


async def test_events_are_parsed(endpoint: Endpoint, upstream: TestUpstream) -> None:
    url = f"{upstream.base_url}/chat/completions"
    body = chat("two words", stream=True)
    data = [event.data async for event in endpoint.events(url, body, status_error)]
    assert data[-1] == "[DONE]"
    assert len(data) >= 3


async def test_status_errors_are_classified(endpoint: Endpoint, upstream: TestUpstream) -> None:
    with pytest.raises(UpstreamRateLimited) as caught:
        await endpoint.post(
            f"{upstream.base_url}/chat/completions", chat("[fail:429]"), status_error
        )
    assert caught.value.status_code == 429


async def test_refused_connection_is_unavailable(endpoint: Endpoint) -> None:
    with pytest.raises(UpstreamUnavailable, match="cannot reach the upstream"):
        await endpoint.post("http://127.0.0.1:9/v1/chat/completions", chat("hi"), status_error)


async def test_closed_connection_is_unavailable(endpoint: Endpoint, closing_server: int) -> None:
    url = f"http://127.0.0.1:{closing_server}/v1/chat/completions"
    with pytest.raises(UpstreamUnavailable):
        await endpoint.post(url, chat("hi"), status_error)


async def test_slow_answer_is_a_timeout(endpoint: Endpoint, upstream: TestUpstream) -> None:
    url = f"{upstream.base_url}/chat/completions"
    with pytest.raises(UpstreamTimeout, match="within 1 seconds"):
        await endpoint.post(url, chat("[sleep:3000] hi"), status_error)


async def test_slow_event_is_a_timeout(endpoint: Endpoint, upstream: TestUpstream) -> None:
    url = f"{upstream.base_url}/chat/completions"
    body = chat("[sleep:3000] hi", stream=True)
    with pytest.raises(UpstreamTimeout, match="no event within"):
        _ = [event async for event in endpoint.events(url, body, status_error)]


async def test_stream_cut_off_is_unavailable(endpoint: Endpoint, upstream: TestUpstream) -> None:
    url = f"{upstream.base_url}/chat/completions"
    events = endpoint.events(url, chat("a b c [drop]", stream=True), status_error)
    with pytest.raises(UpstreamUnavailable, match="broke off"):
        _ = [event async for event in events]


async def test_no_event_stream_is_a_protocol_error(
    endpoint: Endpoint, upstream: TestUpstream
) -> None:
    url = f"{upstream.base_url}/chat/completions"  # not streamed: a JSON answer
    with pytest.raises(UpstreamProtocolError):
        _ = [event async for event in endpoint.events(url, chat("hi"), status_error)]


async def test_abandoned_stream_closes_its_connection(
    endpoint: Endpoint, upstream: TestUpstream
) -> None:
    """A client that goes away stops the upstream call: the connection is closed, not reused."""
    url = f"{upstream.base_url}/chat/completions"
    body = chat("[sleep:50] " + "word " * 40, stream=True)
    events = endpoint.events(url, body, status_error)
    async with contextlib.aclosing(events):
        async for _event in events:
            break
    await endpoint.post(url, chat("next"), status_error)
    first, second = upstream.requests[-2:]
    assert first.client_port != second.client_port
