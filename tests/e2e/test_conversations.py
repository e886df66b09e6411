"""Conversations API end to end: the eight routes, responses on a conversation, its lock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import Project
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

Sessions = async_sessionmaker[AsyncSession]
Json = dict[str, Any]
LOCKED = (
    "Another process is currently operating on this conversation. Please retry in a few seconds."
)
LONG_INPUT = " ".join(f"word{n}" for n in range(24))
SLOW_STREAM = "[sleep:300] " + " ".join(f"slow{n}" for n in range(12))


def user(text: str) -> Json:
    return {"role": "user", "content": text}


def users(prefix: str, count: int, start: int = 0) -> list[Json]:
    return [user(f"{prefix}{n}") for n in range(start, start + count)]


async def raw_json(call: Awaitable[Any]) -> Json:
    """The JSON body of a `.with_raw_response` call, exactly as it came over the wire."""
    raw = await call
    body: Json = json.loads(raw.http_response.text)
    return body


async def api_error(call: Awaitable[Any], kind: type[openai.APIStatusError]) -> Json:
    """Await `call`, expect `kind`, return OpenAI's `error` object."""
    with pytest.raises(kind) as caught:
        await call
    assert isinstance(caught.value.body, dict), caught.value
    return caught.value.body


async def listing(client: AsyncOpenAI, conversation_id: str, order: str = "asc") -> list[Json]:
    """Every item of a conversation, through the SDK's auto-pagination."""
    pages = client.conversations.items.list(conversation_id, order=order, limit=100)  # type: ignore[arg-type]
    return [item.model_dump(exclude_none=True) async for item in pages]


def texts(items: list[Json]) -> list[str]:
    return [part["text"] for item in items for part in item.get("content") or []]


def sent_texts(upstream: TestUpstream) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in upstream.last_request().body["messages"]]


async def new_conversation(client: AsyncOpenAI, items: list[Json] | None = None) -> str:
    conversation = await client.conversations.create(items=items or [])  # type: ignore[arg-type]
    return conversation.id


async def lease_of(sessions: Sessions, conversation_id: str) -> tuple[str | None, Any]:
    async with sessions() as session:
        row = (
            await session.execute(
                sa.text(
                    "SELECT active_response_id, lease_expires_at FROM conversations WHERE id = :c"
                ),
                {"c": conversation_id},
            )
        ).one()
    return row.active_response_id, row.lease_expires_at


async def eventually(check: Callable[[], Awaitable[bool]], tries: int = 100) -> None:
    """Bounded polling: `check` must come true within `tries` * 50 ms."""
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never came true")


async def create_when_unlocked(client: AsyncOpenAI, conversation_id: str, text: str) -> Any:
    """A create on the conversation, retried while the conversation is still locked."""
    for _ in range(100):
        try:
            return await client.responses.create(
                model="test-model", input=text, conversation=conversation_id
            )
        except openai.BadRequestError as exc:
            if exc.code != "conversation_locked":
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("the conversation stayed locked")


async def last_event(stream: AsyncIterable[Any]) -> Any:
    """Read a stream to its end; its terminal event."""
    events = [event async for event in stream]
    return events[-1]


async def assert_unlocked(client: AsyncOpenAI, conversation_id: str) -> None:
    """The conversation is free again: a create on it goes through at once."""
    response = await client.responses.create(
        model="test-model", input="free?", conversation=conversation_id
    )
    assert response.status == "completed"


# 1. Conversation objects ---------------------------------------------------------------


async def test_create_retrieve_update_delete(client: AsyncOpenAI) -> None:
    body = await raw_json(
        client.conversations.with_raw_response.create(
            items=users("seed", 20),  # type: ignore[arg-type]
            metadata={"topic": "demo", "owner": "me"},
        )
    )
    assert schema_errors("ConversationResource", body) == []
    conversation_id = body["id"]
    assert conversation_id.startswith("conv_")
    assert isinstance(body["created_at"], int)
    assert body == {
        "id": conversation_id,
        "object": "conversation",
        "created_at": body["created_at"],
        "metadata": {"topic": "demo", "owner": "me"},
    }
    assert texts(await listing(client, conversation_id)) == [f"seed{n}" for n in range(20)]
    fetched = await raw_json(client.conversations.with_raw_response.retrieve(conversation_id))
    assert fetched == body

    updated = await raw_json(
        client.conversations.with_raw_response.update(conversation_id, metadata={"new": "1"})
    )
    assert schema_errors("ConversationResource", updated) == []
    assert updated == {**body, "metadata": {"new": "1"}}  # the whole map is replaced
    assert (await client.conversations.retrieve(conversation_id)).metadata == {"new": "1"}
    cleared = await client.conversations.update(conversation_id, metadata=None)
    assert cleared.metadata == {}
    assert len(await listing(client, conversation_id)) == 20  # updates leave the items alone


async def test_create_without_anything_is_an_empty_conversation(client: AsyncOpenAI) -> None:
    conversation = await client.conversations.create()
    assert conversation.metadata == {}
    page = await raw_json(client.conversations.items.with_raw_response.list(conversation.id))
    assert page == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


@pytest.mark.parametrize("route", ["create", "add"])
async def test_more_than_twenty_items_is_refused(
    client: AsyncOpenAI, project: Project, sessions: Sessions, route: str
) -> None:
    conversation_id = await new_conversation(client, users("keep", 2))
    call: Awaitable[Any]
    if route == "create":
        call = client.conversations.create(items=users("x", 21))  # type: ignore[arg-type]
    else:
        call = client.conversations.items.create(conversation_id, items=users("x", 21))  # type: ignore[arg-type]
    error = await api_error(call, openai.BadRequestError)
    assert error["param"] == "items"
    assert error["type"] == "invalid_request_error"
    assert texts(await listing(client, conversation_id)) == ["keep0", "keep1"]
    async with sessions() as session:
        count = await session.scalar(
            sa.text("SELECT count(*) FROM conversations WHERE project_id = :p"),
            {"p": project.project_id},
        )
    assert count == 1


async def test_delete_hides_the_conversation_everywhere(client: AsyncOpenAI) -> None:
    conversation_id = await new_conversation(client, users("gone", 3))
    [item, *_] = await listing(client, conversation_id)
    earlier = await client.responses.create(
        model="test-model", input="before", conversation=conversation_id
    )
    body = await raw_json(client.conversations.with_raw_response.delete(conversation_id))
    assert body == {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
    assert schema_errors("DeletedConversationResource", body) == []
    items = client.conversations.items
    calls: list[Awaitable[Any]] = [
        client.conversations.retrieve(conversation_id),
        client.conversations.update(conversation_id, metadata={"a": "b"}),
        client.conversations.delete(conversation_id),
        items.list(conversation_id),
        items.create(conversation_id, items=[user("late")]),  # type: ignore[list-item]
        items.retrieve(item["id"], conversation_id=conversation_id),
        items.delete(item["id"], conversation_id=conversation_id),
    ]
    for call in calls:
        error = await api_error(call, openai.NotFoundError)
        assert error["type"] == "invalid_request_error"
    error = await api_error(
        client.responses.create(model="test-model", input="hi", conversation=conversation_id),
        openai.NotFoundError,
    )
    assert error["param"] == "conversation"
    assert error["message"] == f"Conversation with id '{conversation_id}' not found."
    # "Items in the conversation will not be deleted": the response and its items remain.
    kept = await client.responses.retrieve(earlier.id)
    assert kept.output_text == "echo: before"
    assert kept.conversation is not None
    assert kept.conversation.id == conversation_id
    inputs = await client.responses.input_items.list(earlier.id)
    assert [text for entry in inputs.data for text in texts([entry.model_dump()])] == ["before"]


# 2. Items ------------------------------------------------------------------------------


async def test_add_items_returns_exactly_the_created_items(client: AsyncOpenAI) -> None:
    conversation_id = await new_conversation(client, users("old", 2))
    submitted: list[Json] = [
        user("plain string"),
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "parts"}]},
        {"role": "assistant", "content": "earlier answer"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        *users("more", 15),
    ]
    body = await raw_json(
        client.conversations.items.with_raw_response.create(conversation_id, items=submitted)  # type: ignore[arg-type]
    )
    assert schema_errors("ConversationItemList", body) == []
    created = body["data"]
    assert [item["type"] for item in created] == [item.get("type", "message") for item in submitted]
    assert all(item["status"] == "completed" for item in created)
    assert len({item["id"] for item in created}) == 20
    assert (body["first_id"], body["last_id"]) == (created[0]["id"], created[-1]["id"])
    assert body["has_more"] is False
    plain, parts, assistant, call, output = created[:5]
    assert plain == {
        "id": plain["id"],
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "plain string"}],
        "status": "completed",
    }
    assert plain["id"].startswith("msg_")
    assert parts["content"] == [{"type": "input_text", "text": "parts"}]
    assert assistant["content"] == [
        {"type": "output_text", "text": "earlier answer", "annotations": [], "logprobs": []}
    ]
    assert call["id"].startswith("fc_")
    assert (call["call_id"], call["name"], output["output"]) == ("call_1", "f", "42")
    stored = await raw_json(
        client.conversations.items.with_raw_response.list(conversation_id, order="asc", limit=100)
    )
    assert stored["data"][2:] == created
    assert texts(stored["data"][:2]) == ["old0", "old1"]


@pytest.fixture
async def conversation_45(client: AsyncOpenAI) -> tuple[str, list[str]]:
    """A conversation of 45 user messages m0…m44, and their ids oldest first."""
    conversation_id = await new_conversation(client, users("m", 20))
    await client.conversations.items.create(conversation_id, items=users("m", 20, 20))  # type: ignore[arg-type]
    await client.conversations.items.create(conversation_id, items=users("m", 5, 40))  # type: ignore[arg-type]
    items = await listing(client, conversation_id)
    assert texts(items) == [f"m{n}" for n in range(45)]
    return conversation_id, [item["id"] for item in items]


async def test_list_defaults_to_newest_first(
    client: AsyncOpenAI, conversation_45: tuple[str, list[str]]
) -> None:
    conversation_id, ids = conversation_45
    page = await raw_json(client.conversations.items.with_raw_response.list(conversation_id))
    assert schema_errors("ConversationItemList", page) == []
    assert [item["id"] for item in page["data"]] == ids[::-1][:20]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[44], ids[25], True)


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 7, 20, 45, 100])
async def test_auto_pagination_walks_every_item(
    client: AsyncOpenAI, conversation_45: tuple[str, list[str]], order: str, limit: int
) -> None:
    conversation_id, ids = conversation_45
    pages = client.conversations.items.list(conversation_id, order=order, limit=limit)  # type: ignore[arg-type]
    walked = [item.id async for item in pages]
    assert walked == (ids if order == "asc" else ids[::-1])


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_manual_after_paging(
    client: AsyncOpenAI, conversation_45: tuple[str, list[str]], order: str
) -> None:
    conversation_id, ids = conversation_45
    expected = ids if order == "asc" else ids[::-1]
    seen: list[str] = []
    after: str | None = None
    shapes: list[tuple[int, bool]] = []
    while True:
        extra = {"after": after} if after else {}
        page = await raw_json(
            client.conversations.items.with_raw_response.list(
                conversation_id,
                order=order,  # type: ignore[arg-type]
                limit=20,
                **extra,  # type: ignore[arg-type]
            )
        )
        assert schema_errors("ConversationItemList", page) == []
        data = [item["id"] for item in page["data"]]
        assert (page["first_id"], page["last_id"]) == (data[0], data[-1])
        shapes.append((len(data), page["has_more"]))
        seen += data
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert shapes == [(20, True), (20, True), (5, False)]
    assert seen == expected
    after_middle = await client.conversations.items.list(
        conversation_id,
        order=order,  # type: ignore[arg-type]
        after=expected[9],
        limit=3,
    )
    assert [item.id for item in after_middle.data] == expected[10:13]


async def test_after_an_item_of_another_conversation_is_not_found(client: AsyncOpenAI) -> None:
    first = await new_conversation(client, users("a", 2))
    second = await new_conversation(client, users("b", 2))
    [foreign, _] = await listing(client, second)
    error = await api_error(
        client.conversations.items.list(first, after=foreign["id"]), openai.NotFoundError
    )
    assert error["param"] == "after"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"include": ["bogus.include"]}, "include[0]"),
    ],
)
async def test_list_rejects_bad_queries(client: AsyncOpenAI, query: Json, param: str) -> None:
    conversation_id = await new_conversation(client, users("q", 1))
    error = await api_error(
        client.conversations.items.list(conversation_id, **query), openai.BadRequestError
    )
    assert error["param"] == param


@pytest.mark.parametrize("route", ["list", "retrieve", "create"])
async def test_include_is_accepted_and_checked(client: AsyncOpenAI, route: str) -> None:
    conversation_id = await new_conversation(client, users("i", 2))
    [item, _] = await listing(client, conversation_id)
    items = client.conversations.items

    def call(include: list[str]) -> Awaitable[Any]:
        if route == "list":
            return items.list(conversation_id, include=include)  # type: ignore[arg-type]
        if route == "retrieve":
            return items.retrieve(item["id"], conversation_id=conversation_id, include=include)  # type: ignore[arg-type]
        return items.create(conversation_id, items=[user("added")], include=include)  # type: ignore[arg-type,list-item]

    await call(["message.input_image.image_url", "computer_call_output.output.image_url"])
    error = await api_error(call(["message.input_image.image_url", "nope"]), openai.BadRequestError)
    assert error["param"] == "include[1]"


async def test_retrieve_and_delete_one_item(
    client: AsyncOpenAI, upstream: TestUpstream, conversation_45: tuple[str, list[str]]
) -> None:
    conversation_id, ids = conversation_45
    listed = await listing(client, conversation_id)
    item = await raw_json(
        client.conversations.items.with_raw_response.retrieve(
            ids[3], conversation_id=conversation_id
        )
    )
    assert schema_errors("ConversationItem", item) == []
    assert item == listed[3]
    answer = await raw_json(
        client.conversations.items.with_raw_response.delete(ids[3], conversation_id=conversation_id)
    )
    assert schema_errors("ConversationResource", answer) == []
    assert answer == await raw_json(
        client.conversations.with_raw_response.retrieve(conversation_id)
    )
    remaining = await listing(client, conversation_id)
    assert [entry["id"] for entry in remaining] == ids[:3] + ids[4:]
    items = client.conversations.items
    for call in (
        items.retrieve(ids[3], conversation_id=conversation_id),
        items.delete(ids[3], conversation_id=conversation_id),
    ):
        await api_error(call, openai.NotFoundError)
    await client.responses.create(model="test-model", input="next", conversation=conversation_id)
    sent = [content for _, content in sent_texts(upstream)]
    assert "m3" not in sent
    assert sent[:4] == ["m0", "m1", "m2", "m4"]


async def test_concurrent_appends_keep_each_batch_whole(client: AsyncOpenAI) -> None:
    conversation_id = await new_conversation(client, users("base", 1))
    batches = await asyncio.gather(
        *(
            client.conversations.items.create(conversation_id, items=users(f"b{b}-", 20))  # type: ignore[arg-type]
            for b in range(5)
        )
    )
    items = await listing(client, conversation_id)
    assert len(items) == 1 + 5 * 20
    ids = [item["id"] for item in items[1:]]
    runs = sorted(ids[n : n + 20] for n in range(0, 100, 20))
    assert runs == sorted([item.id for item in batch.data] for batch in batches)


@pytest.mark.parametrize("item_id", ["msg_doesnotexist", "elsewhere"])
async def test_unknown_item_is_not_found(client: AsyncOpenAI, item_id: str) -> None:
    conversation_id = await new_conversation(client, users("u", 2))
    if item_id == "elsewhere":  # a real item, but of another conversation of the same project
        [foreign, _] = await listing(client, await new_conversation(client, users("o", 2)))
        item_id = foreign["id"]
    items = client.conversations.items
    for call in (
        items.retrieve(item_id, conversation_id=conversation_id),
        items.delete(item_id, conversation_id=conversation_id),
    ):
        error = await api_error(call, openai.NotFoundError)
        assert error["message"] == f"Item with id '{item_id}' not found."
    assert texts(await listing(client, conversation_id)) == ["u0", "u1"]


# 3. Responses on a conversation --------------------------------------------------------


@pytest.mark.parametrize("as_object", [False, True])
@pytest.mark.parametrize("input_", ["third", [user("third"), user("third and a half")]])
async def test_response_continues_the_conversation_and_appends_its_turn(
    client: AsyncOpenAI, upstream: TestUpstream, as_object: bool, input_: str | list[Json]
) -> None:
    history = [user("first"), {"role": "assistant", "content": "answer"}, user("second")]
    conversation_id = await new_conversation(client, history)
    reference: Any = {"id": conversation_id} if as_object else conversation_id
    body = await raw_json(
        client.responses.with_raw_response.create(
            model="test-model",
            input=input_,  # type: ignore[arg-type]
            conversation=reference,
        )
    )
    assert schema_errors("Response", body) == []
    assert body["status"] == "completed"
    assert body["conversation"] == {"id": conversation_id}
    new_texts = [input_] if isinstance(input_, str) else [item["content"] for item in input_]
    assert sent_texts(upstream) == [
        ("user", "first"),
        ("assistant", "answer"),
        ("user", "second"),
        *[("user", text) for text in new_texts],
    ]
    fetched = await raw_json(client.responses.with_raw_response.retrieve(body["id"]))
    assert fetched["conversation"] == {"id": conversation_id}

    items = await listing(client, conversation_id)
    inputs = await client.responses.input_items.list(body["id"], order="asc")
    turn = [item.id for item in inputs.data] + [item["id"] for item in body["output"]]
    assert [item["id"] for item in items[3:]] == turn
    assert texts(items) == ["first", "answer", "second", *new_texts, f"echo: {new_texts[-1]}"]
    page = await raw_json(
        client.conversations.items.with_raw_response.list(conversation_id, limit=1)
    )
    assert page["data"] == body["output"]

    await client.responses.create(model="test-model", input="again", conversation=reference)
    assert sent_texts(upstream)[-2:] == [("assistant", f"echo: {new_texts[-1]}"), ("user", "again")]
    assert len(await listing(client, conversation_id)) == 3 + len(new_texts) + 1 + 2


async def test_tool_call_turns_round_trip(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    conversation_id = await new_conversation(client)
    tools: Any = [{"type": "function", "name": "lookup"}]
    calling = await client.responses.create(
        model="test-model",
        input='find it [tool:lookup:{"q":1}]',
        tools=tools,
        conversation=conversation_id,
    )
    [call] = calling.output
    assert call.type == "function_call"
    answer = await client.responses.create(
        model="test-model",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "found"}],
        tools=tools,
        conversation=conversation_id,
    )
    assert answer.status == "completed"
    messages = upstream.last_request().body["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "found"}
    kinds = [item["type"] for item in await listing(client, conversation_id)]
    # The fake model answers the last user text again, so it calls the tool once more.
    assert kinds == ["message", "function_call", "function_call_output", answer.output[0].type]


async def test_streamed_response_shows_the_conversation_in_every_snapshot(
    client: AsyncOpenAI,
) -> None:
    conversation_id = await new_conversation(client, users("s", 2))
    stream = await client.responses.create(
        model="test-model", input="stream me", conversation=conversation_id, stream=True
    )
    snapshots: dict[str, Any] = {}
    async for event in stream:
        if event.type in ("response.created", "response.in_progress", "response.completed"):
            snapshots[event.type] = event.response.conversation
    assert set(snapshots) == {"response.created", "response.in_progress", "response.completed"}
    for conversation in snapshots.values():
        assert conversation is not None
        assert conversation.model_dump() == {"id": conversation_id}
    assert texts(await listing(client, conversation_id)) == [
        "s0",
        "s1",
        "stream me",
        "echo: stream me",
    ]


@pytest.mark.parametrize(("text", "limit"), [(LONG_INPUT, 16), ("cut me short [length]", None)])
@pytest.mark.parametrize("stream", [False, True])
async def test_incomplete_response_appends_its_turn(
    client: AsyncOpenAI, text: str, limit: int | None, stream: bool
) -> None:
    conversation_id = await new_conversation(client, users("before", 1))
    extra: Json = {"max_output_tokens": limit} if limit else {}
    if stream:
        events = await client.responses.create(
            model="test-model", input=text, conversation=conversation_id, stream=True, **extra
        )
        last = await last_event(events)
        assert last.type == "response.incomplete"
        response = last.response
    else:
        response = await client.responses.create(
            model="test-model", input=text, conversation=conversation_id, **extra
        )
    assert response.status == "incomplete"
    items = await listing(client, conversation_id)
    assert [item["id"] for item in items[2:]] == [response.output[0].id]
    assert texts(items[:2]) == ["before0", text]
    assert items[2]["status"] == "incomplete"
    await assert_unlocked(client, conversation_id)


@pytest.mark.parametrize("stream", [False, True])
async def test_failed_response_appends_nothing_and_releases_the_lock(
    client: AsyncOpenAI, sessions: Sessions, stream: bool
) -> None:
    conversation_id = await new_conversation(client, users("kept", 2))
    if stream:
        events = await client.responses.create(
            model="test-model", input="boom [fail:500]", conversation=conversation_id, stream=True
        )
        last = await last_event(events)
        assert last.type == "response.failed"
        assert last.response.conversation is not None
        assert last.response.conversation.id == conversation_id
    else:
        with pytest.raises(openai.APIStatusError):
            await client.responses.create(
                model="test-model", input="boom [fail:500]", conversation=conversation_id
            )
    assert texts(await listing(client, conversation_id)) == ["kept0", "kept1"]
    assert await lease_of(sessions, conversation_id) == (None, None)
    await assert_unlocked(client, conversation_id)
    assert len(await listing(client, conversation_id)) == 4


@pytest.mark.parametrize("read", [0, 1, 4])
async def test_disconnected_stream_is_cancelled_appends_nothing_and_unlocks(
    client: AsyncOpenAI, sessions: Sessions, read: int
) -> None:
    """The client hangs up after `read` events (0: as soon as the stream opens)."""
    conversation_id = await new_conversation(client, users("kept", 2))
    stream = await client.responses.create(
        model="test-model", input=SLOW_STREAM, conversation=conversation_id, stream=True
    )
    seen = 0
    async for _event in stream:
        if seen == read:
            break
        seen += 1
    await stream.close()
    async with sessions() as session:
        response_id = await session.scalar(
            sa.text("SELECT id FROM responses WHERE conversation_id = :c"), {"c": conversation_id}
        )
    assert response_id is not None

    async def cancelled() -> bool:
        return (await client.responses.retrieve(response_id)).status == "cancelled"

    await eventually(cancelled)
    assert texts(await listing(client, conversation_id)) == ["kept0", "kept1"]
    follow_up = await create_when_unlocked(client, conversation_id, "after the hang-up")
    assert follow_up.status == "completed"
    assert texts(await listing(client, conversation_id)) == [
        "kept0",
        "kept1",
        "after the hang-up",
        "echo: after the hang-up",
    ]


# 4. The conversation lock --------------------------------------------------------------


def assert_locked(error: openai.APIStatusError) -> None:
    assert error.status_code == 400
    assert error.body == {
        "message": LOCKED,
        "type": "invalid_request_error",
        "param": "conversation",
        "code": "conversation_locked",
    }


@pytest.mark.parametrize("stream", [False, True])
async def test_busy_conversation_is_locked_until_the_response_ends(
    client: AsyncOpenAI, sessions: Sessions, stream: bool
) -> None:
    conversation_id = await new_conversation(client, users("h", 1))

    async def slow() -> str:
        if not stream:
            response = await client.responses.create(
                model="test-model", input="[sleep:1500] slow", conversation=conversation_id
            )
            return str(response.status)
        events = await client.responses.create(
            model="test-model",
            input="[sleep:300] a b c d",
            conversation=conversation_id,
            stream=True,
        )
        return str((await last_event(events)).response.status)

    first = asyncio.create_task(slow())

    async def held() -> bool:
        return (await lease_of(sessions, conversation_id))[0] is not None

    await eventually(held)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="test-model", input="me too", conversation=conversation_id
        )
    assert_locked(caught.value)
    assert caught.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="test-model", input="me too", conversation=conversation_id, stream=True
        )
    assert_locked(caught.value)
    assert await first == "completed"
    assert await lease_of(sessions, conversation_id) == (None, None)
    await assert_unlocked(client, conversation_id)
    assert len(await listing(client, conversation_id)) == 1 + 2 + 2


async def test_racing_creates_exactly_one_wins(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    conversation_id = await new_conversation(client, users("r", 1))
    results = await asyncio.gather(
        *(
            client.responses.create(
                model="test-model", input=f"[sleep:500] racer {n}", conversation=conversation_id
            )
            for n in range(5)
        ),
        return_exceptions=True,
    )
    winners = [result for result in results if not isinstance(result, BaseException)]
    losers = [result for result in results if isinstance(result, BaseException)]
    assert len(winners) == 1, results
    assert len(losers) == 4
    for loser in losers:
        assert isinstance(loser, openai.BadRequestError), loser
        assert_locked(loser)
    [winner] = winners
    items = await listing(client, conversation_id)
    assert len(items) == 1 + 2
    assert items[-1]["id"] == winner.output[0].id
    assert len([r for r in upstream.requests if r.path == "/v1/chat/completions"]) == 1


async def test_rejected_request_leaves_no_lock(client: AsyncOpenAI, sessions: Sessions) -> None:
    conversation_id = await new_conversation(client, users("p", 1))
    orphan = [{"type": "function_call_output", "call_id": "call_nowhere", "output": "x"}]
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(
            model="test-model",
            input=orphan,  # type: ignore[arg-type]
            conversation=conversation_id,
        )
    assert await lease_of(sessions, conversation_id) == (None, None)
    await assert_unlocked(client, conversation_id)


@pytest.mark.parametrize(("offset", "free"), [(-60, True), (600, False)])
async def test_lease_of_a_dead_holder(
    client: AsyncOpenAI, sessions: Sessions, offset: int, free: bool
) -> None:
    conversation_id = await new_conversation(client, users("d", 1))
    async with sessions() as session, session.begin():
        await session.execute(
            sa.text(
                "UPDATE conversations SET active_response_id = 'resp_dead', "
                "lease_expires_at = :at WHERE id = :c"
            ),
            {"at": datetime.now(UTC) + timedelta(seconds=offset), "c": conversation_id},
        )
    call = client.responses.create(model="test-model", input="alive", conversation=conversation_id)
    if free:
        assert (await call).status == "completed"
        assert await lease_of(sessions, conversation_id) == (None, None)
        assert len(await listing(client, conversation_id)) == 3
    else:
        with pytest.raises(openai.BadRequestError) as caught:
            await call
        assert_locked(caught.value)
        assert (await lease_of(sessions, conversation_id))[0] == "resp_dead"
        assert len(await listing(client, conversation_id)) == 1


async def test_abandoned_plain_create_still_releases_the_lock(
    client: AsyncOpenAI, sessions: Sessions
) -> None:
    conversation_id = await new_conversation(client, users("a", 1))
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.3).responses.create(
            model="test-model", input="[sleep:1500] slow", conversation=conversation_id
        )
    follow_up = await create_when_unlocked(client, conversation_id, "later")
    assert follow_up.status == "completed"
    assert await lease_of(sessions, conversation_id) == (None, None)
    items = texts(await listing(client, conversation_id))
    assert items[-2:] == ["later", "echo: later"]
    # The abandoned turn is either wholly there (it completed) or wholly absent.
    assert items[:-2] in (["a0"], ["a0", "[sleep:1500] slow", "echo: [sleep:1500] slow"])


# 5. Request checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "code", "param"),
    [
        ({"previous_response_id": "PREVIOUS"}, "mutually_exclusive_parameters", None),
        ({"store": False}, "invalid_value", "store"),
        ({"conversation": "conv with spaces!"}, "invalid_value", "conversation"),
    ],
)
async def test_conversation_request_checks(
    client: AsyncOpenAI, sessions: Sessions, extra: Json, code: str, param: str | None
) -> None:
    conversation_id = await new_conversation(client, users("c", 1))
    if extra.get("previous_response_id") == "PREVIOUS":
        previous = await client.responses.create(model="test-model", input="before")
        extra = {"previous_response_id": previous.id}
    params: Json = {"model": "test-model", "input": "hi", "conversation": conversation_id, **extra}
    error = await api_error(client.responses.create(**params), openai.BadRequestError)
    assert (error["code"], error["param"]) == (code, param)
    assert await lease_of(sessions, conversation_id) == (None, None)
    assert len(await listing(client, conversation_id)) == 1


async def test_unknown_conversation_is_not_found(client: AsyncOpenAI) -> None:
    error = await api_error(
        client.responses.create(model="test-model", input="hi", conversation="conv_nope"),
        openai.NotFoundError,
    )
    assert error["param"] == "conversation"
    assert error["message"] == "Conversation with id 'conv_nope' not found."


# 6. Projects are isolated ----------------------------------------------------------------

FOREIGN_CALLS: dict[str, Callable[[AsyncOpenAI, str, str], Awaitable[Any]]] = {
    "get": lambda c, conv, _item: c.conversations.retrieve(conv),
    "update": lambda c, conv, _item: c.conversations.update(conv, metadata={"stolen": "yes"}),
    "delete": lambda c, conv, _item: c.conversations.delete(conv),
    "items list": lambda c, conv, _item: c.conversations.items.list(conv),
    "items add": lambda c, conv, _item: c.conversations.items.create(
        conv,
        items=[user("intruder")],  # type: ignore[list-item]
    ),
    "item get": lambda c, conv, item: c.conversations.items.retrieve(item, conversation_id=conv),
    "item delete": lambda c, conv, item: c.conversations.items.delete(item, conversation_id=conv),
    "response": lambda c, conv, _item: c.responses.create(
        model="test-model", input="let me in", conversation=conv
    ),
}


@pytest.mark.parametrize("route", list(FOREIGN_CALLS))
async def test_another_project_sees_nothing(
    client: AsyncOpenAI, other_client: AsyncOpenAI, route: str
) -> None:
    conversation = await client.conversations.create(items=users("mine", 3), metadata={"k": "v"})  # type: ignore[arg-type]
    before = await listing(client, conversation.id)
    error = await api_error(
        FOREIGN_CALLS[route](other_client, conversation.id, before[1]["id"]), openai.NotFoundError
    )
    assert error["message"] == f"Conversation with id '{conversation.id}' not found."
    if route == "response":
        assert error["param"] == "conversation"
    assert (await client.conversations.retrieve(conversation.id)) == conversation
    assert await listing(client, conversation.id) == before
    item = await client.conversations.items.retrieve(
        before[1]["id"], conversation_id=conversation.id
    )
    assert item.model_dump(exclude_none=True) == before[1]
    await assert_unlocked(client, conversation.id)


# 7. Long conversations -------------------------------------------------------------------


async def conversation_of(client: AsyncOpenAI, size: int) -> str:
    """A conversation of `size` user messages n0…, built 20 at a time."""
    conversation_id = await new_conversation(client, users("n", min(size, 20)))
    for start in range(20, size, 20):
        batch = users("n", min(20, size - start), start)
        await client.conversations.items.create(conversation_id, items=batch)  # type: ignore[arg-type]
    return conversation_id


async def test_long_conversation_costs_a_constant_number_of_statements(
    client: AsyncOpenAI, rapport: RapportServer, upstream: TestUpstream
) -> None:
    """The counter sees every statement of the server, the sweeper's too: the fewest of three
    creates is what one create costs."""
    warm_up = await conversation_of(client, 3)
    await client.responses.create(model="test-model", input="warm", conversation=warm_up)
    counts: dict[int, list[tuple[int, int]]] = {10: [], 1000: []}
    for size, seen in counts.items():
        conversation_id = await conversation_of(client, size)
        for attempt in range(3):
            with rapport.count_statements() as counter:
                response = await client.responses.create(
                    model="test-model", input=f"last word {attempt}", conversation=conversation_id
                )
            assert response.status == "completed"
            seen.append((len(counter.statements), len(counter.reads)))
            if attempt == 0:
                assert sent_texts(upstream) == [
                    *[("user", f"n{n}") for n in range(size)],
                    ("user", "last word 0"),
                ]
    assert min(counts[1000]) == min(counts[10]), counts
    assert min(counts[10])[0] > 0
    items = await listing(client, conversation_id)
    assert len(items) == 1000 + 3 * 2
    assert texts(items[999:1002]) == ["n999", "last word 0", "echo: last word 0"]
