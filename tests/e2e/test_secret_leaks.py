"""Credentials an upstream quotes back — in any case, cut short, split across chunks, base64-
or URL-encoded — reach no client, no stored response, no event replay and no log line.

The test upstream's `[leak]` makes it quote the key each request carried (and the secrets a
test puts in `upstream.leaks`) in every form `leak_forms` makes, in its answer, in a tool call's
arguments or in its error message; the official SDK reads what Rapport makes of it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.anthropic_upstream import AnthropicUpstream
from tests.conftest import (
    ROUTE_KEY,
    ROUTE_KEY_ENV,
    UPSTREAM_KEY,
    Project,
    rapport_with_routes,
    sdk,
    server_settings,
)
from tests.gemini_upstream import GeminiUpstream
from tests.harness import RapportServer
from tests.log_capture import written_logs
from tests.responses_upstream import ResponsesUpstream
from tests.upstream import HEADER_MARKER, TestUpstream, leak_forms

LOOKUP = {
    "type": "function",
    "name": "lookup",
    "description": "Look a word up.",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
}
REDACTED = "[redacted]"  # what a client sees where a secret was
SEALING_KEY = "configured-sealing-key-3c4d5e6f7a8b9c0d"


def readable(text: str, secret: str) -> list[str]:
    """The pieces of `secret` still readable in `text`, case ignored: its first 12 characters
    (also URL-encoded), or 12 base64 characters its bytes alone decide in one of the encoded
    forms the upstream sends."""
    pieces = [secret[:12], quote(secret, safe="")[:12]]
    pieces += [form[4:16] for form in leak_forms(secret)[5:11]]  # the six base64 forms
    low = text.lower()
    return [piece for piece in pieces if piece.lower() in low]


def assert_scrubbed(seen: list[str], secrets: list[str]) -> None:
    everything = "\n".join(seen)
    for secret in secrets:
        assert readable(everything, secret) == [], secret


async def streamed(client: AsyncOpenAI, **body: Any) -> list[dict[str, Any]]:
    stream = await client.responses.create(stream=True, **body)
    return [event.model_dump() async for event in stream]


def deltas(events: list[dict[str, Any]], kind: str) -> str:
    return "".join(e["delta"] for e in events if e["type"] == kind)


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Rapport's log lines at DEBUG, as its handler writes them."""
    with written_logs() as written:
        yield written


async def test_an_answer_quoting_the_keys_is_scrubbed_whole_and_streamed(
    client: AsyncOpenAI, logged: io.StringIO
) -> None:
    seen: list[str] = []
    for model in ("test-model", "renamed"):  # the catch-all's key, then a route's
        whole = await client.responses.create(model=model, input="[leak]")
        assert REDACTED in whole.output_text
        events = await streamed(client, model=model, input="[leak]")
        done = events[-1]["response"]
        text = deltas(events, "response.output_text.delta")
        assert REDACTED in text
        assert text == "".join(c["text"] for c in done["output"][0]["content"])
        stored = await client.responses.retrieve(done["id"])
        assert stored.output_text == text
        seen += [whole.model_dump_json(), json.dumps(events), stored.model_dump_json()]
    assert_scrubbed([*seen, logged.getvalue()], [UPSTREAM_KEY, ROUTE_KEY])


async def test_debug_logs_show_no_upstream_header(client: AsyncOpenAI, logged: io.StringIO) -> None:
    await client.responses.create(model="test-model", input="hello")
    await streamed(client, model="test-model", input="hello")
    lines = logged.getvalue()
    assert '"logger":"rapport.access"' in lines  # the handler wrote the requests' lines
    assert HEADER_MARKER not in lines  # the upstream sent it on both answers


async def test_errors_quoting_the_key_are_scrubbed(
    client: AsyncOpenAI, logged: io.StringIO
) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        await client.responses.create(model="test-model", input="[leak] [fail:500]")
    body = raised.value.response.text
    assert REDACTED in body
    found = re.search(r"resp_\w+", raised.value.message)
    assert found is not None
    stored_whole = await client.responses.retrieve(found.group())
    events = await streamed(client, model="test-model", input="[leak] [fail:500]")
    assert events[-1]["type"] == "response.failed"
    stored_streamed = await client.responses.retrieve(events[-1]["response"]["id"])
    assert stored_streamed.error is not None
    assert REDACTED in stored_streamed.error.message
    seen = [body, stored_whole.model_dump_json(), json.dumps(events)]
    seen += [stored_streamed.model_dump_json(), logged.getvalue()]
    assert_scrubbed(seen, [UPSTREAM_KEY])


async def test_tool_call_arguments_quoting_the_key_are_scrubbed(client: AsyncOpenAI) -> None:
    body: dict[str, Any] = {"model": "test-model", "input": "[leak] [tool:lookup:{}]"}
    whole = await client.responses.create(**body, tools=[LOOKUP])
    call = whole.output[0]
    assert call.type == "function_call"
    assert REDACTED in call.arguments
    assert json.loads(call.arguments)["leaked"].startswith("Here is what I was given:")
    events = await streamed(client, **body, tools=[LOOKUP])
    arguments = deltas(events, "response.function_call_arguments.delta")
    assert REDACTED in arguments
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == arguments
    stored = await client.responses.retrieve(events[-1]["response"]["id"])
    assert stored.output[0].type == "function_call"
    assert stored.output[0].arguments == arguments
    seen = [whole.model_dump_json(), json.dumps(events), stored.model_dump_json()]
    assert_scrubbed(seen, [UPSTREAM_KEY])


async def test_a_background_response_replays_no_key(client: AsyncOpenAI) -> None:
    queued = await client.responses.create(model="test-model", input="[leak]", background=True)
    response = queued
    while response.status in ("queued", "in_progress"):
        await asyncio.sleep(0.05)
        response = await client.responses.retrieve(queued.id)
    assert REDACTED in response.output_text
    replay = await client.responses.retrieve(queued.id, stream=True, starting_after=0)
    events = [event.model_dump() async for event in replay]
    assert deltas(events, "response.output_text.delta") == response.output_text
    assert_scrubbed([json.dumps(events), response.model_dump_json()], [UPSTREAM_KEY])


async def database_sealing_key(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session:
        value = await session.scalar(
            sa.text("select value from server_secrets where name = 'sealing_key'")
        )
    assert isinstance(value, str)
    return value


def fernet_key(secret: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode()


@pytest.fixture
def leaking(upstream: TestUpstream) -> Iterator[TestUpstream]:
    yield upstream
    upstream.leaks = []


async def test_the_database_sealing_key_is_scrubbed(
    client: AsyncOpenAI,
    leaking: TestUpstream,
    sessions: async_sessionmaker[AsyncSession],
    logged: io.StringIO,
) -> None:
    key = await database_sealing_key(sessions)
    leaking.leaks = [key, fernet_key(key)]
    whole = await client.responses.create(model="test-model", input="[leak]")
    events = await streamed(client, model="test-model", input="[leak]")
    assert whole.output_text.count(REDACTED) > 2 * len(leak_forms(key))
    seen = [whole.model_dump_json(), json.dumps(events), logged.getvalue()]
    assert_scrubbed(seen, [key, fernet_key(key)])


async def test_a_configured_sealing_key_is_scrubbed(
    database_url: str, leaking: TestUpstream, project: Project
) -> None:
    settings = server_settings(database_url, leaking, secret_key=f"{SEALING_KEY}, old-key-0000")
    server = RapportServer(settings).start()
    try:
        leaking.leaks = [SEALING_KEY, fernet_key(SEALING_KEY)]
        client = sdk(server, project)
        whole = await client.responses.create(model="test-model", input="[leak] [fail:500]")
    except openai.APIStatusError as exc:
        seen = [exc.response.text]
        events = await streamed(client, model="test-model", input="[leak]")
        seen.append(json.dumps(events))
        assert REDACTED in deltas(events, "response.output_text.delta")
    else:
        raise AssertionError(f"the upstream's 500 became {whole.status}")
    finally:
        server.stop()
    assert_scrubbed(seen, [SEALING_KEY, fernet_key(SEALING_KEY)])


@pytest.fixture(scope="module")
def native_upstreams() -> Iterator[dict[str, TestUpstream]]:
    with (
        AnthropicUpstream(api_key=ROUTE_KEY) as claude,
        GeminiUpstream(api_key=ROUTE_KEY) as gemini,
        ResponsesUpstream() as responses,
    ):
        yield {"anthropic": claude, "gemini": gemini, "openai-responses": responses}


async def test_native_providers_errors_quoting_their_key_are_scrubbed(
    database_url: str,
    upstream: TestUpstream,
    native_upstreams: dict[str, TestUpstream],
    project: Project,
    logged: io.StringIO,
) -> None:
    routes = {
        f"leaky-{provider}": {
            "provider": provider,
            "base_url": server.base_url,
            "api_key_env": ROUTE_KEY_ENV,
        }
        for provider, server in native_upstreams.items()
    }
    seen: list[str] = []
    with rapport_with_routes(database_url, upstream, **routes) as server:
        client = sdk(server, project)
        for model in routes:
            with pytest.raises(openai.APIStatusError) as raised:
                await client.responses.create(model=model, input="[leak] [fail:500]")
            assert REDACTED in raised.value.response.text, model
            events = await streamed(client, model=model, input="[leak] [fail:500]")
            assert events[-1]["type"] == "response.failed", model
            stored = await client.responses.retrieve(events[-1]["response"]["id"])
            seen += [raised.value.response.text, json.dumps(events), stored.model_dump_json()]
    assert_scrubbed([*seen, logged.getvalue()], [ROUTE_KEY])
