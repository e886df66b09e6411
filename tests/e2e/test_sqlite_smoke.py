"""The embedded default (SQLite): the core flows work on the same migrations, no server needed."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from app.db.session import create_engine, create_sessionmaker
from tests.conftest import new_project, sdk
from tests.harness import RapportServer
from tests.upstream import TestUpstream


@pytest.fixture
async def sqlite_client(rapport_sqlite: RapportServer, sqlite_url: str) -> AsyncOpenAI:
    engine = create_engine(sqlite_url)
    try:
        project = await new_project(create_sessionmaker(engine))
    finally:
        await engine.dispose()
    return sdk(rapport_sqlite, project)


async def test_create_chain_list_delete_on_sqlite(
    sqlite_client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await sqlite_client.responses.create(
        model="test-model", input="one", metadata={"db": "sqlite"}
    )
    second = await sqlite_client.responses.create(
        model="test-model", input="two", previous_response_id=first.id
    )
    assert second.output_text == "echo: two"
    assert [m["content"] for m in upstream.last_request().body["messages"]] == [
        "one",
        "echo: one",
        "two",
    ]
    fetched = await sqlite_client.responses.retrieve(first.id)
    assert fetched.metadata == {"db": "sqlite"}
    assert fetched.created_at == first.created_at
    items = await sqlite_client.responses.input_items.list(second.id)
    assert [item.content[0].text for item in items.data] == ["two"]  # type: ignore[union-attr]
    reference: Any = [{"type": "item_reference", "id": second.output[0].id}]
    await sqlite_client.responses.create(model="test-model", input=reference)
    assert upstream.last_request().body["messages"] == [
        {"role": "assistant", "content": "echo: two"}
    ]
    await sqlite_client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await sqlite_client.responses.retrieve(first.id)
    reference = [{"type": "item_reference", "id": first.output[0].id}]
    with pytest.raises(openai.NotFoundError):  # a deleted response's items are gone for good
        await sqlite_client.responses.create(model="test-model", input=reference)


async def test_upstream_failure_is_stored_on_sqlite(sqlite_client: AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        await sqlite_client.responses.create(model="test-model", input="[fail:500]")
