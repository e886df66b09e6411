"""What a route lets through to its upstream: top_k, metadata, verbosity, files, reasoning."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from tests.conftest import Project, rapport_with_routes, sdk
from tests.harness import RapportServer
from tests.upstream import TestUpstream

FILE_PART: Any = {
    "type": "input_file",
    "filename": "a.txt",
    "file_data": "data:text/plain;base64,aGVsbG8=",
}


@pytest.fixture(scope="module")
def routed(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    with rapport_with_routes(
        database_url,
        upstream,
        open={
            "forward_top_k": True,
            "forward_metadata": True,
            "forward_verbosity": True,
            "replay_reasoning": True,
        },
        closed={
            "accepts_files": False,
            "max_tokens_param": "max_tokens",
            "json_schema_style": "json_object_schema",
        },
    ) as server:
        yield server


@pytest.fixture
def client(routed: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(routed, project)


def sent_here(upstream: TestUpstream) -> list[dict[str, Any]]:
    """The bodies this module's routes sent. The upstream is the session's: a server started
    on the shared database may resume another test's orphaned background job meanwhile."""
    return [r.body for r in upstream.requests if r.body.get("model") in ("open", "closed")]


async def test_opt_in_parameters_reach_only_routes_that_ask(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    extra: Any = {"top_k": 40}
    for model in ("open", "closed"):
        response = await client.responses.create(
            model=model,
            input="hi",
            metadata={"team": "a"},
            text={"verbosity": "low"},
            extra_body=extra,
        )
        assert response.metadata == {"team": "a"}  # echoed either way
        assert response.text.verbosity == "low"
    opened, closed = sent_here(upstream)
    assert (opened["top_k"], opened["metadata"], opened["verbosity"]) == (40, {"team": "a"}, "low")
    assert not {"top_k", "metadata", "verbosity"} & set(closed)


async def test_max_output_tokens_goes_by_the_name_the_route_wants(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    for model in ("open", "closed"):
        await client.responses.create(model=model, input="hi", max_output_tokens=32)
    modern, legacy = sent_here(upstream)
    assert modern["max_completion_tokens"] == 32
    assert "max_tokens" not in modern
    assert legacy["max_tokens"] == 32
    assert "max_completion_tokens" not in legacy


async def test_files_pass_through_or_are_refused_by_name(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    content: Any = [{"type": "input_text", "text": "read this"}, FILE_PART]
    await client.responses.create(model="open", input=[{"role": "user", "content": content}])
    sent = sent_here(upstream)[-1]["messages"][-1]["content"]
    assert sent[1] == {
        "type": "file",
        "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGVsbG8="},
    }
    upstream.clear()
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="closed", input=[{"role": "user", "content": content}])
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.param == "input[0].content[1]"
    assert sent_here(upstream) == []


async def test_reasoning_is_replayed_only_where_the_route_says(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    for model in ("open", "closed"):
        first = await client.responses.create(model=model, input="[reasoning:think hard] q")
        assert [item.type for item in first.output] == ["reasoning", "message"]
        await client.responses.create(model=model, input="next", previous_response_id=first.id)
    replayed = sent_here(upstream)[1]["messages"][1]
    dropped = sent_here(upstream)[3]["messages"][1]
    assert replayed["role"] == dropped["role"] == "assistant"
    assert replayed["reasoning_content"] == "think hard"
    assert "reasoning_content" not in dropped


class Point(BaseModel):
    x: int
    label: str


async def test_a_schema_goes_in_the_form_the_route_wants(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    for model in ("open", "closed"):
        parsed = await client.responses.parse(model=model, input="a point", text_format=Point)
        assert parsed.output_parsed == Point(x=1, label="<label>")
        assert parsed.text.format is not None
        assert parsed.text.format.type == "json_schema"  # echoed as asked, either way
    standard, llama_style = (body["response_format"] for body in sent_here(upstream))
    assert standard["type"] == "json_schema"
    assert standard["json_schema"]["name"] == "Point"
    assert llama_style == {"type": "json_object", "schema": standard["json_schema"]["schema"]}
