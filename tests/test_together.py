"""A response's row and its items written together (app/responses/together.py): one statement
on Postgres, all or nothing, stored exactly as the row-per-item INSERT stored them; the same
results on SQLite's two statements."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.session import single_statements, unit_of_work
from app.responses import repository, together


@contextmanager
def statements(sessions: async_sessionmaker[AsyncSession]) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs (BEGIN and COMMIT are not among them)."""
    sent: list[str] = []
    engine = sessions.kw["bind"].sync_engine

    def seen(*args: Any) -> None:
        sent.append(args[2])

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def new_response(project_id: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": f"resp_{secrets.token_hex(8)}",
        "project_id": project_id,
        "key_id": None,
        "status": "in_progress",
        "model": "test-model",
        "background": False,
        "previous_response_id": None,
        "conversation_id": None,
        "params": {"temperature": 1.0, "a": [1, 2]},
        "instructions": None,
        "request": None,
        "metadata": {"z": "last", "a": "first"},
        "created_at": now,
        "heartbeat_at": now,
        "attempts": 1,
    }


def items_of(response: dict[str, Any], side: str, n: int) -> together.NewItems:
    # Keys out of alphabetical order: JSON text keeps them as they came.
    bodies = [
        {
            "type": "message",
            "id": f"msg_{secrets.token_hex(8)}",
            "role": "user",
            "content": [{"type": "input_text", "text": f'item {k} \u00e9\u0000 "quoted"'}],
        }
        for k in range(n)
    ]
    counts = [7 + k for k in range(n)]
    return together.NewItems(
        response["project_id"], response["id"], side, bodies, utcnow(), counts, "o200k_base"
    )


async def stored_items(
    sessions: async_sessionmaker[AsyncSession], response_id: str
) -> list[tuple[Any, ...]]:
    items = repository.ITEMS
    async with sessions() as session:
        rows = await session.execute(
            sa.select(
                items.c.id,
                items.c.side,
                items.c.position,
                items.c.type,
                items.c.body,
                items.c.token_count,
                items.c.token_encoding,
            )
            .where(items.c.response_id == response_id)
            .order_by(items.c.side, items.c.position)
        )
        return [tuple(row) for row in rows]


def expected(items: together.NewItems) -> list[tuple[Any, ...]]:
    counts = items.token_counts or [None] * len(items.bodies)
    return [
        (body["id"], items.side, k, body["type"], body, count, items.token_encoding)
        for k, (body, count) in enumerate(zip(items.bodies, counts, strict=True))
    ]


async def status_of(sessions: async_sessionmaker[AsyncSession], response_id: str) -> str | None:
    async with sessions() as session:
        found: str | None = await session.scalar(
            sa.select(repository.RESPONSES.c.status).where(repository.RESPONSES.c.id == response_id)
        )
        return found


async def stored_response(
    sessions: async_sessionmaker[AsyncSession], inputs: int, **values: Any
) -> tuple[dict[str, Any], together.NewItems]:
    """A response stored with `inputs` input items, as a create stores it."""
    response = new_response("proj_together") | values
    items = items_of(response, repository.INPUT, inputs)
    async with single_statements(sessions) as session:
        await together.insert_response_with_items(session, response, items)
    return response, items


async def test_a_response_and_its_items_are_stored_as_given(
    store: async_sessionmaker[AsyncSession],
) -> None:
    response = new_response("proj_together")
    inputs = items_of(response, repository.INPUT, 3)
    with statements(store) as sent:
        async with single_statements(store) as session:
            await together.insert_response_with_items(session, response, inputs)
    postgres = store.kw["bind"].dialect.name == "postgresql"
    assert len(sent) == (1 if postgres else 2)
    assert await stored_items(store, response["id"]) == expected(inputs)
    async with store() as session:
        row = (
            await session.execute(
                sa.select(repository.RESPONSES).where(repository.RESPONSES.c.id == response["id"])
            )
        ).one()
    assert row.metadata == response["metadata"]
    assert list(row.metadata) == ["z", "a"]  # the key order as it came
    assert row.params == response["params"]
    assert row.created_at == response["created_at"]
    if postgres:
        async with store() as session:
            text = await session.scalar(
                sa.text("SELECT body::text FROM items WHERE id = :id"),
                {"id": inputs.bodies[0]["id"]},
            )
        assert text is not None
        assert text.startswith('{"type":"message","id":')


async def test_items_without_counts_have_no_encoding(
    store: async_sessionmaker[AsyncSession],
) -> None:
    response = new_response("proj_together")
    inputs = items_of(response, repository.INPUT, 2)._replace(token_counts=None)
    async with single_statements(store) as session:
        await together.insert_response_with_items(session, response, inputs)
    stored = await stored_items(store, response["id"])
    assert [(row[5], row[6]) for row in stored] == [(None, None), (None, None)]


async def test_an_ending_is_written_once_with_its_output(
    store: async_sessionmaker[AsyncSession],
) -> None:
    response, inputs = await stored_response(store, 1)
    outputs = items_of(response, repository.OUTPUT, 2)
    final = {"status": "completed", "usage": {"total_tokens": 3}, "completed_at": utcnow()}
    with statements(store) as sent:
        async with single_statements(store) as session:
            assert await together.finish_with_items(
                session, response["project_id"], response["id"], final, outputs, epoch=1
            )
    if store.kw["bind"].dialect.name == "postgresql":
        assert len(sent) == 1
    assert await status_of(store, response["id"]) == "completed"
    assert await stored_items(store, response["id"]) == expected(inputs) + expected(outputs)

    # A second ending (a late run, a cancel) does not apply, and adds no items.
    late = items_of(response, repository.OUTPUT, 1)
    async with single_statements(store) as session:
        assert not await together.finish_with_items(
            session, response["project_id"], response["id"], {"status": "failed"}, late, epoch=1
        )
    assert await status_of(store, response["id"]) == "completed"
    assert await stored_items(store, response["id"]) == expected(inputs) + expected(outputs)


async def test_an_ending_of_an_attempt_taken_over_does_not_apply(
    store: async_sessionmaker[AsyncSession],
) -> None:
    response, _ = await stored_response(store, 1, attempts=2)
    async with single_statements(store) as session:
        taken_over = not await together.finish_with_items(
            session,
            response["project_id"],
            response["id"],
            {"status": "completed"},
            items_of(response, repository.OUTPUT, 1),
            epoch=1,
        )
    assert taken_over
    assert await status_of(store, response["id"]) == "in_progress"
    assert [row[1] for row in await stored_items(store, response["id"])] == ["input"]


async def test_an_item_that_cannot_be_stored_leaves_nothing_of_the_write(
    store: async_sessionmaker[AsyncSession],
) -> None:
    """All or nothing: an item id already stored fails the write, the response's too."""
    first, taken = await stored_response(store, 1)

    second = new_response("proj_together")
    clashing = items_of(second, repository.INPUT, 2)
    clashing.bodies[1]["id"] = taken.bodies[0]["id"]
    with pytest.raises(IntegrityError):
        async with single_statements(store) as session:
            await together.insert_response_with_items(session, second, clashing)
    assert await status_of(store, second["id"]) is None
    assert await stored_items(store, second["id"]) == []

    outputs = items_of(first, repository.OUTPUT, 2)
    outputs.bodies[0]["id"] = taken.bodies[0]["id"]
    with pytest.raises(IntegrityError):
        async with single_statements(store) as session:
            await together.finish_with_items(
                session, first["project_id"], first["id"], {"status": "completed"}, outputs
            )
    assert await status_of(store, first["id"]) == "in_progress"
    assert await stored_items(store, first["id"]) == expected(taken)


async def test_more_items_than_one_statement_takes_go_in_slices(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Postgres too; the caller then needs a unit of work, which `fits_one_statement`
    tells it."""
    monkeypatch.setattr(repository, "INSERT_SLICE", 2)
    response = new_response("proj_together")
    inputs = items_of(response, repository.INPUT, 5)
    assert not together.fits_one_statement(inputs.bodies)
    with statements(sessions) as sent:
        async with unit_of_work(sessions) as session:
            await together.insert_response_with_items(session, response, inputs)
    assert len(sent) == 1 + 3  # the response, then three slices of items
    assert await stored_items(sessions, response["id"]) == expected(inputs)


async def test_a_claim_takes_a_queued_response_with_its_input_in_order(
    store: async_sessionmaker[AsyncSession],
) -> None:
    response, inputs = await stored_response(store, 3, status="queued", attempts=0)
    now = utcnow()
    with statements(store) as sent:
        async with single_statements(store) as session:
            claimed = await together.claim_with_input(session, response["id"], now)
    postgres = store.kw["bind"].dialect.name == "postgresql"
    assert len(sent) == (1 if postgres else 2)
    assert claimed is not None
    row, bodies = claimed
    assert (row.id, row.status, row.attempts, row.heartbeat_at) == (
        response["id"],
        "in_progress",
        1,
        now,
    )
    assert row.metadata_ == response["metadata"]
    assert row.created_at == response["created_at"]
    assert bodies == list(inputs.bodies)
    assert [list(body) for body in bodies] == [list(body) for body in inputs.bodies]

    # Taken: a second claim (another worker, a duplicate job) gets nothing.
    async with single_statements(store) as session:
        assert await together.claim_with_input(session, response["id"], utcnow()) is None


async def test_a_claimed_response_without_input_items_has_an_empty_input(
    store: async_sessionmaker[AsyncSession],
) -> None:
    response, _ = await stored_response(store, 0, status="queued", attempts=0)
    async with single_statements(store) as session:
        claimed = await together.claim_with_input(session, response["id"], utcnow())
    assert claimed is not None
    assert claimed[1] == []
