"""The embedded default (SQLite): the core flows work on the same migrations, no server needed."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI

from app.context import repository as reads
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


async def test_twenty_concurrent_creates_all_succeed_on_sqlite(sqlite_client: AsyncOpenAI) -> None:
    """One writer at a time, waited for in order: 20 clients at once never see "database is
    locked", including turns that read history before they write (a chain, conversations)."""
    first = await sqlite_client.responses.create(model="test-model", input="root")
    conversations = [await sqlite_client.conversations.create() for _ in range(5)]

    async def one(n: int) -> Any:
        if n % 4 == 0:
            return await sqlite_client.responses.create(
                model="test-model", input=f"turn {n}", conversation=conversations[n // 4].id
            )
        if n % 2 == 0:
            return await sqlite_client.responses.create(
                model="test-model", input=f"turn {n}", previous_response_id=first.id
            )
        return await sqlite_client.responses.create(model="test-model", input=f"turn {n}")

    for _ in range(3):
        answers = await asyncio.gather(*(one(n) for n in range(20)))
        assert [answer.status for answer in answers] == ["completed"] * 20
        assert sorted(a.output_text for a in answers) == sorted(
            f"echo: turn {n}" for n in range(20)
        )
        stored = await asyncio.gather(*(sqlite_client.responses.retrieve(a.id) for a in answers))
        assert [s.id for s in stored] == [a.id for a in answers]
    for n, conversation in enumerate(conversations):
        items = await sqlite_client.conversations.items.list(conversation.id, order="asc")
        texts = [item.content[0].text for item in items.data]  # type: ignore[union-attr]
        assert texts == [f"turn {n * 4}", f"echo: turn {n * 4}"] * 3  # each round's turn, whole


async def test_a_chain_s_running_count_cuts_the_same_on_sqlite(
    rapport_sqlite: RapportServer, sqlite_url: str
) -> None:
    """The running count is written by SQLite's UPDATE too, and a walk it stops reads the
    same items as a whole walk cut to the same budget."""
    engine = create_engine(sqlite_url)
    sessions = create_sessionmaker(engine)
    try:
        project = await new_project(sessions)
        client = sdk(rapport_sqlite, project)
        ids: list[str] = []
        for turn in range(6):
            response = await client.responses.create(
                model="test-model",
                input=f"turn {turn} " + "word " * 20,
                previous_response_id=ids[-1] if ids else None,
            )
            ids.append(response.id)
        async with sessions() as session:
            rows = (
                await session.execute(
                    sa.text(
                        "SELECT chain_tokens, chain_encoding, (SELECT SUM(token_count) "
                        "FROM items WHERE response_id = r.id) FROM responses AS r "
                        "WHERE r.project_id = :project ORDER BY r.created_at, r.id"
                    ),
                    {"project": project.project_id},
                )
            ).all()
            running = 0
            for chain_tokens, encoding, own in rows:
                running += own
                assert (chain_tokens, encoding) == (running, "o200k_base")
            budget = running // 3
            stopped = await reads.chain_items(
                session, project.project_id, ids[-1], "o200k_base", budget, running
            )
            whole = await reads.chain_items(
                session, project.project_id, ids[-1], "o200k_base", budget
            )
    finally:
        await engine.dispose()
    assert stopped.bodies == whole.bodies
    assert 0 < len(stopped.bodies) < 12
    assert stopped.omitted_tokens == whole.omitted_tokens > 0
