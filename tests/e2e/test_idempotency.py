"""`Idempotency-Key` on creates: a blind retry gets the first answer, and no second model call."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.models import IdempotencyKey
from app.queue.sweeper import purge_idempotency_keys
from tests.conftest import Project
from tests.harness import RapportServer
from tests.upstream import TestUpstream


def keyed(key: str | None = None) -> dict[str, str]:
    return {"Idempotency-Key": key or f"key-{uuid.uuid4().hex}"}


@pytest.fixture
async def http(rapport: RapportServer, project: Project) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(base_url=rapport.base_url, headers=headers, timeout=30) as client:
        yield client


def model_calls(upstream: TestUpstream) -> int:
    return sum(1 for seen in upstream.requests if seen.path.endswith("/chat/completions"))


async def test_a_retry_with_the_same_key_gets_the_first_response_and_no_second_model_call(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    headers = keyed()
    body = {"model": "test-model", "input": "once"}
    first = await http.post("/responses", json=body, headers=headers)
    again = await http.post("/responses", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert model_calls(upstream) == 1
    reordered = json.dumps({"input": "once", "model": "test-model"}, indent=2)
    third = await http.post("/responses", content=reordered, headers=headers)
    assert third.json()["id"] == first.json()["id"]  # the body's key order does not matter


async def test_the_sdks_own_retry_header_is_honoured(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    headers = keyed()
    first = await client.responses.create(model="test-model", input="sdk", extra_headers=headers)
    again = await client.responses.create(model="test-model", input="sdk", extra_headers=headers)
    assert again.id == first.id
    assert again.output_text == first.output_text
    assert model_calls(upstream) == 1


async def test_the_same_key_with_another_body_is_a_400_naming_the_header(
    http: httpx.AsyncClient,
) -> None:
    headers = keyed()
    await http.post("/responses", json={"model": "test-model", "input": "a"}, headers=headers)
    other = await http.post(
        "/responses", json={"model": "test-model", "input": "b"}, headers=headers
    )
    assert other.status_code == 400
    error = other.json()["error"]
    assert (error["param"], error["code"]) == ("Idempotency-Key", "idempotency_key_reused")


async def test_a_second_request_while_the_first_runs_is_a_409_then_gets_its_answer(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    headers = keyed()
    body = {"model": "test-model", "input": "[sleep:700] slow"}
    first = asyncio.create_task(http.post("/responses", json=body, headers=headers))
    await asyncio.sleep(0.3)
    racing = await http.post("/responses", json=body, headers=headers)
    assert racing.status_code == 409
    assert racing.json()["error"]["code"] == "idempotency_key_in_use"
    assert racing.headers["retry-after"] == "1"
    done = await first
    later = await http.post("/responses", json=body, headers=headers)
    assert later.json()["id"] == done.json()["id"]
    assert model_calls(upstream) == 1


async def test_a_refusal_before_anything_was_stored_releases_the_key(
    http: httpx.AsyncClient,
) -> None:
    headers = keyed()
    refused = await http.post(
        "/responses", json={"model": "test-model", "input": 5}, headers=headers
    )
    assert refused.status_code == 400
    fixed = await http.post(
        "/responses", json={"model": "test-model", "input": "hi"}, headers=headers
    )
    assert fixed.status_code == 200


async def test_an_error_after_the_response_was_stored_is_kept_with_its_id(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    """The upstream failed after unit of work #1: the failed response is stored, so a retry
    with the key gets that answer (naming the same id), not a second run."""
    headers = keyed()
    body = {"model": "test-model", "input": "boom [fail:500]"}
    first = await http.post("/responses", json=body, headers=headers)
    again = await http.post("/responses", json=body, headers=headers)
    assert first.status_code == again.status_code == 502
    assert first.headers["x-should-retry"] == again.headers["x-should-retry"] == "false"
    assert again.json() == first.json()
    assert "resp_" in first.json()["error"]["message"]
    assert model_calls(upstream) == 1


async def test_a_streamed_create_is_replayed_as_a_short_stream_of_the_same_response(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    headers = keyed()
    body = {"model": "test-model", "input": "stream me", "stream": True}

    async def events() -> tuple[list[dict[str, Any]], httpx.Headers]:
        async with http.stream("POST", "/responses", json=body, headers=headers) as answer:
            lines = [line async for line in answer.aiter_lines() if line.startswith("data: ")]
            return [json.loads(line.removeprefix("data: ")) for line in lines], answer.headers

    first, _ = await events()
    again, replay_headers = await events()
    assert replay_headers["content-type"].startswith("text/event-stream")
    assert replay_headers["idempotent-replayed"] == "true"
    assert [event["type"] for event in again] == ["response.created", "response.completed"]
    assert again[-1]["response"] == first[-1]["response"]
    assert again[0]["response"]["id"] == first[0]["response"]["id"]
    assert model_calls(upstream) == 1


async def test_store_false_answers_are_not_kept(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    """Keeping the body of a `store: false` response would store what the caller asked us not to."""
    headers = keyed()
    body = {"model": "test-model", "input": "forget me", "store": False}
    first = await http.post("/responses", json=body, headers=headers)
    again = await http.post("/responses", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] != first.json()["id"]
    assert model_calls(upstream) == 2


async def test_conversation_creates_and_item_adds_are_idempotent(http: httpx.AsyncClient) -> None:
    headers = keyed()
    body = {"metadata": {"topic": "retries"}}
    first = await http.post("/conversations", json=body, headers=headers)
    again = await http.post("/conversations", json=body, headers=headers)
    assert again.json()["id"] == first.json()["id"]
    conversation_id = first.json()["id"]
    items = {"items": [{"role": "user", "content": "only once"}]}
    add_headers = keyed()
    added = await http.post(
        f"/conversations/{conversation_id}/items", json=items, headers=add_headers
    )
    re_added = await http.post(
        f"/conversations/{conversation_id}/items", json=items, headers=add_headers
    )
    assert re_added.json() == added.json()
    listed = (await http.get(f"/conversations/{conversation_id}/items")).json()
    assert len(listed["data"]) == 1


async def test_keys_are_per_project(
    http: httpx.AsyncClient, rapport: RapportServer, other_project: Project
) -> None:
    headers = keyed()
    body = {"model": "test-model", "input": "mine"}
    mine = await http.post("/responses", json=body, headers=headers)
    auth = {"authorization": f"Bearer {other_project.secret}", **headers}
    async with httpx.AsyncClient(base_url=rapport.base_url, headers=auth) as other:
        theirs = await other.post("/responses", json=body)
    assert theirs.status_code == 200
    assert theirs.json()["id"] != mine.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "two words"])
async def test_a_malformed_key_is_a_400(http: httpx.AsyncClient, key: str) -> None:
    answer = await http.post("/conversations", json={}, headers={"Idempotency-Key": key.encode()})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "Idempotency-Key"


async def test_a_key_expires_after_24_hours_and_the_sweeper_removes_it(
    http: httpx.AsyncClient,
    project: Project,
    sessions: async_sessionmaker[AsyncSession],
    rapport: RapportServer,
) -> None:
    headers = keyed()
    body = {"model": "test-model", "input": "old"}
    first = await http.post("/responses", json=body, headers=headers)
    mine = IdempotencyKey.project_id == project.project_id
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(IdempotencyKey).where(mine).values(created_at=utcnow() - timedelta(hours=25))
        )
    renewed = await http.post("/responses", json=body, headers=headers)
    assert renewed.json()["id"] != first.json()["id"]
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(IdempotencyKey).where(mine).values(created_at=utcnow() - timedelta(hours=25))
        )
    await purge_idempotency_keys(sessions)
    async with sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).where(mine)) == 0
