"""The console's pages over real data: lists, filters, a response and its chain, conversations,
background, usage and keys — read as HTML over plain HTTP."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import ApiKey, ResponseRow
from tests.conftest import Project
from tests.console.data import Story, story
from tests.console.signing_in import async_console_client, async_sign_in
from tests.harness import RapportServer


@pytest.fixture
async def told(client: AsyncOpenAI) -> Story:
    return await story(client)


@pytest.fixture
async def browser_client(
    rapport: RapportServer, project: Project
) -> AsyncIterator[httpx.AsyncClient]:
    """Signed in; the session's CSRF token rides along in a header only the tests read."""
    async with async_console_client(rapport) as client:
        client.headers["x-test-csrf"] = await async_sign_in(client, project.secret)
        yield client


def ids_on(html: str, prefix: str = "resp_") -> list[str]:
    return re.findall(rf'aria-label="(?:Response|Conversation) ({prefix}[0-9a-f]+)"', html)


async def test_the_list_is_newest_first_and_filters(
    told: Story, browser_client: httpx.AsyncClient
) -> None:
    page = await browser_client.get("/console/responses")
    assert page.status_code == 200
    listed = [i for i in ids_on(page.text) if i.startswith("resp_")]
    everything = [
        told.on_conversation,
        told.tool_answer,
        told.tool_call,
        told.branch,
        told.second,
        told.first,
    ]
    assert [i for i in listed if i in everything] == everything
    by_model = await browser_client.get("/console/responses", params={"model": "renamed"})
    assert [i for i in ids_on(by_model.text) if i in everything] == [told.branch]
    by_metadata = await browser_client.get("/console/responses", params={"q": "customer=acme"})
    assert [i for i in ids_on(by_metadata.text) if i in everything] == [told.first]
    by_conversation = await browser_client.get(
        "/console/responses", params={"conversation": told.conversation}
    )
    assert [i for i in ids_on(by_conversation.text) if i in everything] == [told.on_conversation]
    failed = await browser_client.get("/console/responses", params={"status": "failed"})
    assert not [i for i in ids_on(failed.text) if i in everything]
    future = await browser_client.get("/console/responses", params={"from": "2999-01-01T00:00"})
    assert "No responses" in future.text


async def test_htmx_filters_get_the_results_only(
    told: Story, browser_client: httpx.AsyncClient
) -> None:
    partial = await browser_client.get(
        "/console/responses",
        params={"model": "renamed"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert partial.text.lstrip().startswith('<div id="results">')
    assert "<html" not in partial.text


async def test_search_by_id_goes_to_the_response(
    told: Story, browser_client: httpx.AsyncClient
) -> None:
    found = await browser_client.get("/console/responses", params={"q": told.second})
    assert found.status_code == 303
    assert found.headers["location"] == f"/console/responses/{told.second}"


async def test_pages_of_the_list_are_keyset(
    client: AsyncOpenAI, browser_client: httpx.AsyncClient
) -> None:
    made = [
        (await client.responses.create(model="test-model", input=f"n{n}")).id for n in range(55)
    ]
    first = await browser_client.get("/console/responses")
    first_ids = ids_on(first.text)
    assert first_ids == made[::-1][:50]
    older = re.search(r'href="(/console/responses\?after=[^"]+)"', first.text)
    assert older is not None
    second = await browser_client.get(older.group(1).replace("&amp;", "&"))
    assert ids_on(second.text) == made[::-1][50:]
    newer = re.search(r'href="(/console/responses\?before=[^"]+)"', second.text)
    assert newer is not None
    assert ids_on((await browser_client.get(newer.group(1))).text) == first_ids


async def test_a_response_shows_its_chain_items_usage_and_json(
    told: Story, browser_client: httpx.AsyncClient
) -> None:
    page = (await browser_client.get(f"/console/responses/{told.second}")).text
    chain = page[page.index('id="chain-title"') : page.index('id="input-title"')]
    assert told.first in chain
    assert told.branch in chain  # the other response continuing the same one
    assert told.tool_call in chain  # continued by
    assert "And the next one?" in page
    assert "Raw JSON" in page
    assert f"&#34;id&#34;: &#34;{told.second}&#34;" in page
    first = (await browser_client.get(f"/console/responses/{told.first}")).text
    assert "thinking about primes" in first  # reasoning
    assert "Answer in one word." in first  # instructions
    assert "acme" in first
    assert "Input tokens" in first


async def test_a_tool_call_reads_with_its_output(
    told: Story, browser_client: httpx.AsyncClient
) -> None:
    call = (await browser_client.get(f"/console/responses/{told.tool_call}")).text
    assert "Tool call <code>get_weather</code>" in call
    assert "&#34;city&#34;: &#34;Paris&#34;" in call  # arguments, indented JSON
    answer = (await browser_client.get(f"/console/responses/{told.tool_answer}")).text
    assert "sunny, 21 C" in answer
    assert "done: sunny, 21 C" in answer


async def test_a_conversation_lists_its_items_and_writers(
    told: Story, browser_client: httpx.AsyncClient
) -> None:
    listing = (await browser_client.get("/console/conversations")).text
    assert told.conversation in listing
    assert "topic=greetings" in listing
    page = (await browser_client.get(f"/console/conversations/{told.conversation}")).text
    hand = page.index("Added by hand")
    hello = page.index("Hello in a conversation")
    echo = page.index("echo: Hello in a conversation")
    assert hand < hello < echo
    assert "added to the conversation directly" in page
    assert page.count(f'aria-label="Response {told.on_conversation}"') >= 3


async def test_background_lists_and_cancels(
    client: AsyncOpenAI, browser_client: httpx.AsyncClient
) -> None:
    slow = await client.responses.create(
        model="test-model", input="[sleep:5000] slowly", background=True
    )
    page = await browser_client.get("/console/background")
    assert slow.id in page.text
    assert 'hx-trigger="every 2s"' in page.text
    cancelled = await browser_client.post(
        f"/console/responses/{slow.id}/cancel",
        headers={
            "X-CSRF-Token": browser_client.headers["x-test-csrf"],
            "HX-Request": "true",
            "HX-Target": "background",
        },
    )
    assert cancelled.status_code == 200
    assert f"{slow.id} is cancelled." in cancelled.text
    assert (await client.responses.retrieve(slow.id)).status == "cancelled"


async def test_a_foreground_response_cannot_be_cancelled(
    told: Story, browser_client: httpx.AsyncClient
) -> None:
    refused = await browser_client.post(
        f"/console/responses/{told.first}/cancel",
        headers={"X-CSRF-Token": browser_client.headers["x-test-csrf"]},
    )
    assert refused.status_code == 400
    assert "Cannot cancel a synchronous response." in refused.text


async def test_usage_per_model_and_per_key(
    told: Story,
    browser_client: httpx.AsyncClient,
    project: Project,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    by_model = (await browser_client.get("/console/usage")).text
    assert 'id="usage-data"' in by_model
    assert "renamed" in by_model
    assert "test-model" in by_model
    by_key = (await browser_client.get("/console/usage", params={"by": "key", "range": "7d"})).text
    assert f"test ({project.key_id[-6:]})" in by_key
    async with sessions() as session:
        keys = set(
            await session.scalars(
                sa.select(ResponseRow.key_id).where(ResponseRow.project_id == project.project_id)
            )
        )
    assert keys == {project.key_id}  # set at create time from the caller


async def test_a_created_key_is_shown_once_and_stored_hashed(
    browser_client: httpx.AsyncClient,
    project: Project,
    rapport: RapportServer,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    made = await browser_client.post(
        "/console/keys", data={"name": "ci", "_csrf": browser_client.headers["x-test-csrf"]}
    )
    secret = re.search(r'value="(sk-gateway-[^"]+)"', made.text)
    assert secret is not None
    assert made.headers["cache-control"] == "no-store"
    again = (await browser_client.get("/console/keys")).text
    assert secret.group(1) not in again
    async with sessions() as session:
        row = await session.scalar(
            sa.select(ApiKey).where(ApiKey.name == "ci", ApiKey.project_id == project.project_id)
        )
    assert row is not None
    assert row.secret_sha256 == hashlib.sha256(secret.group(1).encode()).hexdigest()
    usable = AsyncOpenAI(base_url=rapport.base_url, api_key=secret.group(1), max_retries=0)
    await usable.models.list()
    revoked = await browser_client.post(
        f"/console/keys/{row.id}/revoke", data={"_csrf": browser_client.headers["x-test-csrf"]}
    )
    assert revoked.status_code == 303


async def test_the_console_reads_sqlite_too(rapport_sqlite: RapportServer, sqlite_url: str) -> None:
    """The embedded default: the same pages, metadata search and usage buckets on SQLite."""
    from app.auth import create_key
    from app.db.session import create_engine, create_sessionmaker

    engine = create_engine(sqlite_url)
    try:
        info, secret = await create_key(create_sessionmaker(engine), "sqlite")
    finally:
        await engine.dispose()
    client = AsyncOpenAI(base_url=rapport_sqlite.base_url, api_key=secret, max_retries=0)
    made = await client.responses.create(
        model="test-model", input="on sqlite", metadata={"where": "embedded"}
    )
    async with async_console_client(rapport_sqlite) as browser:
        await async_sign_in(browser, secret)
        found = await browser.get("/console/responses", params={"q": "where=embedded"})
        assert ids_on(found.text) == [made.id]
        usage = (await browser.get("/console/usage", params={"by": "key"})).text
        assert f"sqlite ({info.id[-6:]})" in usage
        assert (await browser.get(f"/console/responses/{made.id}")).status_code == 200
