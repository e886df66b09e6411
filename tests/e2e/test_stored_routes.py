"""GET, DELETE and input_items on stored responses, with OpenAI's list and deleted shapes."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import Project
from tests.harness import RapportServer
from tests.openapi import schema_errors


async def test_retrieve_returns_what_create_returned(client: AsyncOpenAI) -> None:
    created = await client.responses.create(model="test-model", input="same", metadata={"a": "1"})
    fetched = await client.responses.retrieve(created.id, include=["message.input_image.image_url"])
    assert fetched.model_dump() == created.model_dump()


async def test_delete_answers_openais_deleted_object(
    rapport: RapportServer, project: Project, client: AsyncOpenAI
) -> None:
    created = await client.responses.create(model="test-model", input="bye")
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {project.secret}"}) as http:
        answer = await http.delete(f"{rapport.base_url}/responses/{created.id}")
        assert answer.status_code == 200
        assert answer.json() == {"id": created.id, "object": "response", "deleted": True}
        again = await http.delete(f"{rapport.base_url}/responses/{created.id}")
        assert again.status_code == 404
        assert again.json()["error"]["message"] == f"Response with id '{created.id}' not found."
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.input_items.list(created.id)


async def test_input_items_are_normalised_with_ids_and_statuses(client: AsyncOpenAI) -> None:
    created = await client.responses.create(
        model="test-model",
        input=[
            {"role": "user", "content": "plain string"},
            {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_a", "output": "done"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "see"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"},
                    {"type": "input_file", "file_id": "file_123"},
                ],
            },
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}]},
            {"role": "assistant", "content": "replayed"},
        ],
    )
    raw = await client.responses.input_items.with_raw_response.list(created.id, order="asc")
    body = json.loads(raw.http_response.text)
    assert schema_errors("ResponseItemList", body) == []
    message, call, output, with_parts, reasoning, assistant = body["data"]
    assert with_parts["content"][1] == {
        "type": "input_image",
        "image_url": "https://example.com/a.png",
        "file_id": None,
        "detail": "auto",
    }
    assert reasoning["id"].startswith("rs_")
    assert assistant["content"] == [
        {"type": "output_text", "text": "replayed", "annotations": [], "logprobs": []}
    ]
    assert message["id"].startswith("msg_")
    assert message == {
        "id": message["id"],
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "plain string"}],
        "status": "completed",
    }
    assert call["id"].startswith("fc_")
    assert call["status"] == "completed"
    assert output["type"] == "function_call_output"
    assert output["status"] == "completed"


async def test_input_items_paginate_like_openai(client: AsyncOpenAI) -> None:
    created = await client.responses.create(
        model="test-model",
        input=[{"role": "user", "content": f"item {n}"} for n in range(7)],
    )

    def texts(page: object) -> list[str]:
        return [item.content[0].text for item in page.data]  # type: ignore[attr-defined]

    newest = await client.responses.input_items.list(created.id, limit=3)
    assert texts(newest) == ["item 6", "item 5", "item 4"]
    assert newest.has_more is True
    assert newest.first_id == newest.data[0].id
    assert newest.last_id == newest.data[-1].id
    following = await client.responses.input_items.list(created.id, limit=3, after=newest.last_id)
    assert texts(following) == ["item 3", "item 2", "item 1"]
    oldest_first = await client.responses.input_items.list(created.id, order="asc", limit=10)
    assert texts(oldest_first) == [f"item {n}" for n in range(7)]
    assert oldest_first.has_more is False
    before = await client.responses.input_items.list(
        created.id, order="asc", extra_query={"before": oldest_first.data[3].id}
    )
    assert texts(before) == ["item 0", "item 1", "item 2"]
    collected = [item.id async for item in client.responses.input_items.list(created.id, limit=2)]
    assert collected == [item.id for item in reversed(oldest_first.data)]
    with pytest.raises(openai.NotFoundError):
        await client.responses.input_items.list(created.id, after="msg_not_here")


async def test_other_projects_ids_are_not_found_on_every_route(
    client: AsyncOpenAI, other_client: AsyncOpenAI
) -> None:
    theirs = await other_client.responses.create(model="test-model", input="private")
    with pytest.raises(openai.NotFoundError) as on_get:
        await client.responses.retrieve(theirs.id)
    assert on_get.value.message.endswith(f"Response with id '{theirs.id}' not found.")
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(theirs.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.input_items.list(theirs.id)
    still_there = await other_client.responses.retrieve(theirs.id)
    assert still_there.status == "completed"


async def test_unknown_id_is_not_found(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.retrieve("resp_missing")
    assert caught.value.body == {
        "message": "Response with id 'resp_missing' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
