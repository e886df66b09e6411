"""Upstream faults: a stored failed response, OpenAI's HTTP answer, no retry, no leaked key."""

from __future__ import annotations

import logging
import re

import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import ROUTE_KEY, UPSTREAM_KEY, Project, sdk, server_settings
from tests.harness import RapportServer
from tests.upstream import TestUpstream

FAULTS = [
    # directive, SDK error, HTTP status, stored error code
    ("[fail:500]", openai.InternalServerError, 502, "server_error"),
    ("[fail:503]", openai.InternalServerError, 502, "server_error"),
    ("[fail:429]", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("[fail:400]", openai.BadRequestError, 400, "invalid_prompt"),
    ("[fail:404]", openai.NotFoundError, 404, "invalid_prompt"),
    ("[fail:401]", openai.InternalServerError, 502, "server_error"),
    ("[garbage]", openai.InternalServerError, 502, "server_error"),
    ("[wrong-types]", openai.InternalServerError, 502, "server_error"),
    ("[sleep:3000]", openai.InternalServerError, 504, "server_error"),
]


async def stored_failures(
    sessions: async_sessionmaker[AsyncSession], project: Project
) -> list[sa.Row[tuple[str, str, object]]]:
    async with sessions() as session:
        result = await session.execute(
            sa.text("SELECT id, status, error FROM responses WHERE project_id = :p"),
            {"p": project.project_id},
        )
        return list(result.all())


def stored_failure_answer(answer: openai.APIStatusError, status: int) -> str:
    """Check OpenAI's error answer to a create whose failure is stored; the response's id."""
    assert answer.status_code == status
    assert answer.response.headers["x-should-retry"] == "false"  # a retry would store another
    assert isinstance(answer.body, dict)
    assert set(answer.body) == {"message", "type", "param", "code"}
    found = re.search(r"resp_[0-9a-f]+", answer.message)
    assert found is not None, answer.message
    return found.group()


@pytest.mark.parametrize(("directive", "error", "status", "code"), FAULTS)
async def test_fault_is_stored_as_failed_and_answered_once(
    client: AsyncOpenAI,
    project: Project,
    sessions: async_sessionmaker[AsyncSession],
    directive: str,
    error: type[openai.APIStatusError],
    status: int,
    code: str,
) -> None:
    retrying = client.with_options(max_retries=2)
    with pytest.raises(error) as caught:
        await retrying.responses.create(model="test-model", input=f"hi {directive}")
    answer = caught.value
    assert answer.status_code == status
    assert answer.response.headers["x-should-retry"] == "false"
    body = answer.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "param", "code"}
    [row] = await stored_failures(sessions, project)  # exactly one: the SDK did not retry
    assert row.status == "failed"
    assert row.error["code"] == code  # type: ignore[index]
    assert row.id in answer.message
    fetched = await client.responses.retrieve(row.id)
    assert fetched.status == "failed"
    assert fetched.error is not None
    assert fetched.error.code == code
    assert fetched.output == []


@pytest.mark.parametrize("status", [400, 500])
async def test_an_upstreams_stack_trace_reaches_no_client(client: AsyncOpenAI, status: int) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.responses.create(model="test-model", input=f"[fail:{status}] [trace] hi")
    message = caught.value.message
    assert f"upstream says {status}" in message  # the upstream's own words are kept
    assert "File " not in message
    assert "app.py" not in message
    response_id = re.search(r"resp_\w+", message)
    assert response_id is not None
    stored = await client.responses.retrieve(response_id.group())
    assert stored.error is not None
    assert "upstream says" in stored.error.message
    assert "app.py" not in stored.error.message


async def test_unreachable_upstream(
    client: AsyncOpenAI, project: Project, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The 502 and the stored error name the URL tried and the setting that points there."""
    with pytest.raises(openai.InternalServerError) as caught:
        await client.responses.create(model="dead-model", input="anyone there?")
    assert caught.value.status_code == 502
    [row] = await stored_failures(sessions, project)
    assert row.status == "failed"
    for message in (caught.value.message, row.error["message"]):  # type: ignore[index]
        assert "cannot reach the upstream at http://127.0.0.1:9/v1/chat/completions" in message
        assert "the base_url of the route 'dead-*'" in message
        assert "RAPPORT_MODELS" in message
        assert "broke off" not in message


async def test_unreachable_catch_all_names_its_setting(
    database_url: str, upstream: TestUpstream, project: Project
) -> None:
    """A stream that never started does not say it broke off; the catch-all names its variable.
    Credentials in the base URL are not repeated."""
    dead = "http://user:s3cret@127.0.0.1:9/v1"
    settings = server_settings(database_url, upstream, upstream_base_url=dead)
    server = RapportServer(settings).start()
    try:
        client = sdk(server, project)
        async with client.responses.stream(model="test-model", input="hi") as stream:
            events = [event async for event in stream]
        failed = events[-1]
        assert failed.type == "response.failed"
        error = failed.response.error
        assert error is not None
        assert (
            "cannot reach the upstream at http://127.0.0.1:9/v1/chat/completions" in error.message
        )
        assert "RAPPORT_UPSTREAM_BASE_URL" in error.message
        for secret in ("broke off", "user", "s3cret"):
            assert secret not in error.message
    finally:
        server.stop()


async def test_routes_rename_models_and_use_their_own_key(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    response = await client.responses.create(model="renamed", input="routed", max_output_tokens=100)
    sent = upstream.last_request()
    assert sent.body["model"] == "upstream-name"
    assert sent.body["max_tokens"] == 100
    assert "max_completion_tokens" not in sent.body
    assert sent.headers["authorization"] == f"Bearer {ROUTE_KEY}"
    assert response.model == "renamed"


async def test_upstream_keys_never_reach_a_client_or_a_log(
    client: AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []
    for directive in ("", "[fail:500]", "[fail:401]", "[sleep:3000]"):
        try:
            answers.append(
                (
                    await client.responses.create(model="test-model", input=f"x {directive}")
                ).model_dump_json()
            )
        except openai.APIStatusError as exc:
            answers.append(exc.response.text)
    everything = "\n".join(answers) + "\n".join(record.getMessage() for record in caplog.records)
    everything += "\n".join(str(record.__dict__) for record in caplog.records)
    assert UPSTREAM_KEY not in everything
    assert ROUTE_KEY not in everything
    assert "Traceback" not in everything
