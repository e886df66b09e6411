"""`include: ["reasoning.encrypted_content"]`: sealed reasoning that round-trips statelessly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import Project, rapport_with_routes, sdk
from tests.e2e.test_streaming import check_stream, parse_frames
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

INCLUDE: Any = ["reasoning.encrypted_content"]


@pytest.fixture(scope="module")
def thinker(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    with rapport_with_routes(database_url, upstream, thinker={"replay_reasoning": True}) as server:
        yield server


@pytest.fixture
def client(thinker: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(thinker, project)


async def test_reasoning_items_carry_a_sealed_copy_only_when_asked(client: AsyncOpenAI) -> None:
    raw = await client.responses.with_raw_response.create(
        model="thinker", input="[reasoning:think hard] q", include=INCLUDE
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    reasoning = document["output"][0]
    assert reasoning["type"] == "reasoning"
    assert reasoning["encrypted_content"].startswith("gAAAA")
    assert "think hard" not in reasoning["encrypted_content"]
    stored = await client.responses.retrieve(document["id"])
    assert stored.output[0].encrypted_content == reasoning["encrypted_content"]
    plain = await client.responses.create(model="thinker", input="[reasoning:think hard] q")
    assert plain.output[0].encrypted_content is None


async def test_stateless_round_trip_replays_the_sealed_reasoning(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await client.responses.with_raw_response.create(
        model="thinker", input="[reasoning:think hard] q", include=INCLUDE, store=False
    )
    reasoning, message = first.http_response.json()["output"]
    # What a stateless client keeps: the opaque blob, no readable reasoning.
    carried = {
        "type": "reasoning",
        "id": reasoning["id"],
        "summary": [],
        "encrypted_content": reasoning["encrypted_content"],
    }
    replay: Any = [
        {"role": "user", "content": "[reasoning:think hard] q"},
        carried,
        {"role": "assistant", "content": message["content"][0]["text"]},
        {"role": "user", "content": "next"},
    ]
    await client.responses.create(model="thinker", input=replay, store=False, include=INCLUDE)
    assistant = upstream.last_request().body["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["reasoning_content"] == "think hard"


async def test_a_tampered_blob_is_a_400(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    tampered: Any = {
        "type": "reasoning",
        "summary": [],
        "encrypted_content": "gAAAAABtampered-blob-that-no-key-opens",
    }
    upstream.clear()
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="thinker",
            input=[tampered, {"role": "user", "content": "hi"}],
            store=False,
        )
    assert refused.value.code == "invalid_encrypted_content"
    assert upstream.requests == []


async def test_streaming_sends_the_sealed_copy_in_the_done_event(
    client: AsyncOpenAI, thinker: RapportServer, project: Project
) -> None:
    headers = {"authorization": f"Bearer {project.secret}"}
    body = {
        "model": "thinker",
        "input": "[reasoning:think hard] q",
        "include": INCLUDE,
        "stream": True,
    }
    async with (
        httpx.AsyncClient(base_url=thinker.base_url, headers=headers, timeout=10) as http,
        http.stream("POST", "/responses", json=body) as answer,
    ):
        events = parse_frames((await answer.aread()).decode())
    final = check_stream(events)
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert done[0]["item"]["type"] == "reasoning"
    assert done[0]["item"]["encrypted_content"].startswith("gAAAA")
    stored = await client.responses.retrieve(final["id"])
    assert stored.output[0].encrypted_content == done[0]["item"]["encrypted_content"]
