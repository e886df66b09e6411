"""One big request must not stall everyone: the event loop stays free while it is processed,
and an upstream answer over RAPPORT_MAX_ANSWER_BYTES ends the run `failed`, stored as such."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.anthropic_upstream import AnthropicUpstream
from tests.conftest import (
    ROUTE_KEY,
    ROUTE_KEY_ENV,
    Project,
    rapport_with_routes,
    sdk,
    server_settings,
)
from tests.e2e.test_upstream_faults import stored_failure_answer, stored_failures
from tests.harness import RapportServer
from tests.upstream import TestUpstream

Sessions = async_sessionmaker[AsyncSession]

# One 2 MB word: tiktoken's slowest kind of input, about a second and a half to tokenize, on
# the way in and again as the test upstream's echo on the way out.
BIG_WORD = "a" * 2_000_000
# A stretch this long with no /health answer counts as the loop being held.
STALL_SECONDS = 0.25


async def test_a_big_request_leaves_the_event_loop_free(
    rapport: RapportServer, client: AsyncOpenAI
) -> None:
    """/health is called back to back while the big create is in flight. Were the counts made
    on the event loop, the loop would be held for nearly all of the create (two counts of
    seconds each around a few milliseconds of other work), and the stretches without an
    answer would add up to nearly all of it; off the loop they add up to next to nothing.
    Half is the line: robust to a busy machine, and far from either case."""
    answered: list[float] = []
    async with httpx.AsyncClient(base_url=rapport.base_url.removesuffix("/v1")) as probe:
        (await probe.get("/health")).raise_for_status()  # its connection is open already
        creating = asyncio.create_task(client.responses.create(model="test-model", input=BIG_WORD))
        started = time.monotonic()
        while not creating.done():
            (await probe.get("/health")).raise_for_status()
            answered.append(time.monotonic())
        ended = time.monotonic()
    response = await creating
    assert (response.status, response.output_text) == ("completed", f"echo: {BIG_WORD}")
    assert response.usage is not None
    assert response.usage.input_tokens > 0
    marks = [started, *answered, ended]
    stalled = sum(b - a for a, b in itertools.pairwise(marks) if b - a > STALL_SECONDS)
    assert len(answered) > 10, answered
    assert stalled < (ended - started) / 2, (stalled, ended - started, len(answered))


# --- the answer cap ---

CAP = 64 * 1024
TOO_BIG = " ".join(f"word{n}" for n in range(20_000))  # ~140 kB, echoed back: over the cap


@pytest.fixture(scope="module")
def capped(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    server = RapportServer(server_settings(database_url, upstream, max_answer_bytes=CAP)).start()
    yield server
    server.stop()


def _is_the_cap(error: Any, limit: int = CAP) -> bool:
    return error.code == "server_error" and f"passed {limit} bytes" in error.message


async def test_an_answer_over_the_cap_fails_the_response_stored(
    capped: RapportServer, project: Project, sessions: Sessions
) -> None:
    client = sdk(capped, project)
    with pytest.raises(openai.InternalServerError) as caught:
        await client.responses.create(model="test-model", input=TOO_BIG)
    answer = caught.value
    response_id = stored_failure_answer(answer, 502)
    assert "RAPPORT_MAX_ANSWER_BYTES" in answer.message
    [row] = await stored_failures(sessions, project)
    assert row.id == response_id
    fetched = await client.responses.retrieve(row.id)
    assert (fetched.status, fetched.output) == ("failed", [])
    assert _is_the_cap(fetched.error)
    # An answer under the cap goes through the same server untouched.
    small = await client.responses.create(model="test-model", input="small enough")
    assert (small.status, small.output_text) == ("completed", "echo: small enough")


async def test_a_streamed_answer_over_the_cap_ends_response_failed(
    capped: RapportServer, project: Project
) -> None:
    client = sdk(capped, project)
    stream = await client.responses.create(model="test-model", input=TOO_BIG, stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.failed"
    final = events[-1].response
    assert final.status == "failed"
    assert _is_the_cap(final.error)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert len(deltas.encode()) <= CAP  # stopped at the cap, not read to the end
    fetched = await client.responses.retrieve(final.id)
    assert fetched.status == "failed"
    assert _is_the_cap(fetched.error)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_routes_own_cap_holds_for_a_native_upstream(
    database_url: str, upstream: TestUpstream, project: Project, stream: bool
) -> None:
    """The native providers read through the shared HTTP edge; a route sets its own cap (the
    test Anthropic answers 3 words past 8,192, so the input and the cap are smaller here)."""
    limit, text = 16 * 1024, " ".join(f"word{n}" for n in range(5_000))  # ~44 kB echoed
    route = {"provider": "anthropic", "api_key_env": ROUTE_KEY_ENV, "max_answer_bytes": limit}
    with (
        AnthropicUpstream(api_key=ROUTE_KEY) as claude,
        rapport_with_routes(
            database_url, upstream, claude={**route, "base_url": claude.base_url}
        ) as server,
    ):
        client = sdk(server, project)
        if stream:
            events = [
                e
                async for e in await client.responses.create(
                    model="claude", input=text, stream=True
                )
            ]
            assert events[-1].type == "response.failed"
            response_id = events[-1].response.id
        else:
            with pytest.raises(openai.InternalServerError) as caught:
                await client.responses.create(model="claude", input=text)
            response_id = stored_failure_answer(caught.value, 502)
        fetched = await client.responses.retrieve(response_id)
        assert fetched.status == "failed"
        assert _is_the_cap(fetched.error, limit)
