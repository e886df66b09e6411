"""Every 400 of `POST /v1/responses` and its query checks: exact param and code, no side effects."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import Project
from tests.harness import RapportServer
from tests.upstream import TestUpstream

BASE: dict[str, Any] = {"model": "test-model", "input": "hello"}
ENVELOPE_KEYS = {"message", "type", "param", "code"}


class _Drop:
    """Marks a key of BASE that a case leaves out of the body altogether."""


DROP = _Drop()


def body_with(overrides: dict[str, Any]) -> dict[str, Any]:
    """BASE with a case's overrides applied, so each case states only what makes it wrong."""
    merged = {**BASE, **overrides}
    return {key: value for key, value in merged.items() if value is not DROP}


def function_tool(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}}


def case(overrides: dict[str, Any], param: str | None, code: str | None, id: str) -> Any:
    return pytest.param(overrides, param, code, id=id)


# Field-level rules: msgspec bounds, enums and types, translated into OpenAI's param and code.
FIELD_CASES = [
    case({"temperature": -0.1}, "temperature", "decimal_below_min_value", "temperature-low"),
    case({"temperature": 2.1}, "temperature", "decimal_above_max_value", "temperature-high"),
    case({"temperature": "hot"}, "temperature", "invalid_type", "temperature-type"),
    case({"top_p": 1.5}, "top_p", "decimal_above_max_value", "top_p-high"),
    case({"top_p": -0.5}, "top_p", "decimal_below_min_value", "top_p-low"),
    case({"top_logprobs": 21}, "top_logprobs", "integer_above_max_value", "top_logprobs-high"),
    case({"top_logprobs": -1}, "top_logprobs", "integer_below_min_value", "top_logprobs-low"),
    case(
        {"max_output_tokens": 15},
        "max_output_tokens",
        "integer_below_min_value",
        "max_output_tokens-15",
    ),
    case({"top_k": -1}, "top_k", "integer_below_min_value", "top_k-low"),
    case({"max_tool_calls": -1}, "max_tool_calls", "integer_below_min_value", "max_tool_calls-low"),
    case(
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        "metadata",
        "object_above_max_properties",
        "metadata-17-pairs",
    ),
    case({"metadata": {"k" * 65: "v"}}, "metadata", "string_above_max_length", "metadata-key-65"),
    case({"metadata": {"k": "v" * 513}}, "metadata", "string_above_max_length", "metadata-val-513"),
    case({"metadata": {"k": 1}}, "metadata", "invalid_type", "metadata-non-string"),
    case({"truncation": "sometimes"}, "truncation", "invalid_value", "truncation-enum"),
    case({"include": ["nope"]}, "include[0]", "invalid_value", "include-enum"),
    case(
        {"include": ["file_search_call.results", "nope"]},
        "include[1]",
        "invalid_value",
        "include-enum-second",
    ),
    case({"service_tier": "gold"}, "service_tier", "invalid_value", "service_tier-enum"),
    case(
        {"text": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
        "text.format.name",
        "missing_required_parameter",
        "json_schema-no-name",
    ),
    case(
        {"text": {"format": {"type": "json_schema", "name": "a b", "schema": {}}}},
        "text.format.name",
        "invalid_value",
        "json_schema-bad-name",
    ),
    case({"text": {"format": {"type": "yaml"}}}, "text.format.type", "invalid_value", "format"),
    case({"text": {"verbosity": "loud"}}, "text.verbosity", "invalid_value", "verbosity"),
    case({"reasoning": {"effort": "extreme"}}, "reasoning.effort", "invalid_value", "effort"),
    case({"frobnicate": 1}, "frobnicate", "unknown_parameter", "unknown-top-level"),
    case(
        {"stream": True, "stream_options": {"x": 1}},
        "stream_options.x",
        "unknown_parameter",
        "unknown-nested",
    ),
    case({"model": DROP}, "model", "missing_required_parameter", "model-missing"),
    case({"model": ""}, "model", "missing_required_parameter", "model-empty"),
    case({"model": 5}, "model", "invalid_type", "model-type"),
    case({"input": DROP}, "input", "missing_required_parameter", "input-missing"),
    case({"input": 42}, "input", "invalid_type", "input-number"),
    case({"store": "yes"}, "store", "invalid_type", "store-type"),
    case({"parallel_tool_calls": "yes"}, "parallel_tool_calls", "invalid_type", "parallel-type"),
    case({"instructions": 5}, "instructions", "invalid_type", "instructions-type"),
    case(
        {"safety_identifier": "x" * 129},
        "safety_identifier",
        "string_above_max_length",
        "safety_identifier-129",
    ),
    case(
        {"prompt_cache_key": "x" * 129},
        "prompt_cache_key",
        "string_above_max_length",
        "prompt_cache_key-129",
    ),
    case(
        {"prompt_cache_retention": "forever"},
        "prompt_cache_retention",
        "invalid_value",
        "prompt_cache_retention-enum",
    ),
    case(
        {"context_management": [{"type": "compaction", "compact_threshold": 999}]},
        "context_management[0].compact_threshold",
        "integer_below_min_value",
        "compact_threshold-low",
    ),
]

# Input items are decoded one by one so that the param names the item and the part.
INPUT_CASES = [
    case({"input": [1]}, "input[0]", "invalid_type", "item-not-object"),
    case(
        {"input": [{"content": "hi"}]},
        "input[0].type",
        "missing_required_parameter",
        "item-no-role-type",
    ),
    case({"input": [{"type": "bogus"}]}, "input[0].type", "invalid_value", "item-unknown-type"),
    case(
        {"input": [{"role": "user", "content": "ok"}, {"type": "bogus"}]},
        "input[1].type",
        "invalid_value",
        "second-item-unknown-type",
    ),
    case(
        {"input": [{"role": "robot", "content": "hi"}]},
        "input[0].role",
        "invalid_value",
        "message-bad-role",
    ),
    case(
        {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
        "input[0].content[0].text",
        "missing_required_parameter",
        "input_text-no-text",
    ),
    case(
        {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
        "input[0].content[0]",
        "invalid_value",
        "input_image-no-source",
    ),
    case(
        {"input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]},
        "input[0]",
        "invalid_value",
        "assistant-with-input_text",
    ),
    case(
        {"input": [{"type": "function_call_output", "output": "x"}]},
        "input[0].call_id",
        "missing_required_parameter",
        "function_call_output-no-call_id",
    ),
    case(
        {"input": [{"type": "function_call", "call_id": "c" * 65, "name": "f", "arguments": "{}"}]},
        "input[0].call_id",
        "string_above_max_length",
        "call_id-65",
    ),
    case(
        {"input": [{"type": "compaction_trigger"}]},
        "input[0].type",
        "unsupported_parameter",
        "compaction_trigger-not-yet",
    ),
    case(
        {"input": [{"type": "function_call_output", "call_id": "c1", "output": "x"}]},
        "input",
        None,
        "output-without-call",
    ),
    case(
        {"input": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]},
        "input",
        None,
        "call-without-output",
    ),
]

# Tools are decoded one by one too: a hosted tool is named, not a generic tag error.
TOOL_CASES = [
    case({"tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_parameter", "hosted"),
    case(
        {"tools": [function_tool("f"), {"type": "code_interpreter", "container": {}}]},
        "tools[1].type",
        "unsupported_parameter",
        "hosted-second",
    ),
    case({"tools": [{"type": "bogus"}]}, "tools[0].type", "invalid_value", "tool-unknown-type"),
    case(
        {"tools": [{"type": "function", "parameters": {}}]},
        "tools[0].name",
        "missing_required_parameter",
        "function-no-name",
    ),
    case(
        {"tools": [{"type": "function", "name": ""}]},
        "tools[0].name",
        "string_below_min_length",
        "function-empty-name",
    ),
    case(
        {"tools": [function_tool("f"), function_tool("f")]},
        "tools[1].name",
        "invalid_value",
        "duplicate-names",
    ),
    case(
        {"tools": [function_tool("f")], "tool_choice": {"type": "function", "name": "g"}},
        "tool_choice",
        "invalid_value",
        "tool_choice-unknown-function",
    ),
    case(
        {"tool_choice": {"type": "function", "name": "g"}},
        "tool_choice",
        "invalid_value",
        "tool_choice-without-tools",
    ),
    case({"tool_choice": "sometimes"}, "tool_choice", "invalid_value", "tool_choice-enum"),
    case(
        {
            "tools": [function_tool("f")],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "auto",
                "tools": [{"type": "function", "name": "g"}],
            },
        },
        "tool_choice.tools[0]",
        "invalid_value",
        "allowed_tools-unknown",
    ),
]

# Rules across fields, checked after decoding.
CROSS_FIELD_CASES = [
    case(
        {"conversation": "conv_abc", "previous_response_id": "resp_abc"},
        None,
        "mutually_exclusive_parameters",
        "conversation-and-previous",
    ),
    case(
        {"background": True, "store": False}, "background", "invalid_value", "background-no-store"
    ),
    case(
        {"stream_options": {"include_obfuscation": False}},
        "stream_options",
        "invalid_value",
        "stream_options-without-stream",
    ),
    case(
        {"previous_response_id": "resp bad!"},
        "previous_response_id",
        "invalid_value",
        "previous-malformed",
    ),
    case(
        {"previous_response_id": "resp_" + "a" * 124},
        "previous_response_id",
        "invalid_value",
        "previous-too-long",
    ),
    case(
        {"previous_response_id": "resp_00000000000000000000000000000000"},
        "previous_response_id",
        "previous_response_not_found",
        "previous-unknown",
    ),
]

CONVERSATION_CASES = [
    case({"conversation": "conv bad!"}, "conversation", "invalid_value", "conversation-malformed"),
    case(
        {"conversation": {"id": "conv bad!"}},
        "conversation",
        "invalid_value",
        "conversation-object-malformed",
    ),
    case(
        {"conversation": "conv_abc", "store": False}, "store", "invalid_value", "conv-store-false"
    ),
]

# Features OpenAI has and Rapport does not yet: refused by name, never silently ignored.
NOT_YET_CASES = [
    case({"moderation": {"model": "m"}}, "moderation", "unsupported_parameter", "moderation"),
    case({"background_options": {}}, "background_options", "unsupported_parameter", "bg-options"),
    case(
        {"prompt_cache_options": {"mode": "implicit"}},
        "prompt_cache_options",
        "unsupported_parameter",
        "prompt_cache_options",
    ),
    case({"access_programs": {}}, "access_programs", "unsupported_parameter", "access_programs"),
    case({"image": {}}, "image", "unsupported_parameter", "image"),
]


def assert_openai_400(exc: openai.BadRequestError, param: str | None, code: str | None) -> None:
    """The SDK reads code/param/type from the envelope, so each must be exactly OpenAI's."""
    assert exc.status_code == 400
    assert isinstance(exc.body, dict)
    assert set(exc.body) == ENVELOPE_KEYS, exc.body
    assert exc.body["type"] == "invalid_request_error"
    assert isinstance(exc.body["message"], str)
    assert exc.body["message"]
    assert (exc.param, exc.code) == (param, code), exc.body["message"]


async def stored_counts(
    sessions: async_sessionmaker[AsyncSession], project: Project
) -> tuple[int, int]:
    """Rows of this test's project in `responses` and `items`: a 400 must leave both at 0."""
    async with sessions() as session:
        responses = await session.scalar(
            sa.text("SELECT count(*) FROM responses WHERE project_id = :p"),
            {"p": project.project_id},
        )
        items = await session.scalar(
            sa.text("SELECT count(*) FROM items WHERE project_id = :p"),
            {"p": project.project_id},
        )
    return int(responses or 0), int(items or 0)


async def assert_no_side_effects(
    upstream: TestUpstream, sessions: async_sessionmaker[AsyncSession], project: Project
) -> None:
    """A rejected request must cost nothing: no model call and no stored row."""
    assert upstream.requests == []
    assert await stored_counts(sessions, project) == (0, 0)


@pytest.mark.parametrize(
    ("overrides", "param", "code"),
    FIELD_CASES + INPUT_CASES + TOOL_CASES + CROSS_FIELD_CASES + CONVERSATION_CASES + NOT_YET_CASES,
)
async def test_create_rejects(
    client: AsyncOpenAI,
    upstream: TestUpstream,
    sessions: async_sessionmaker[AsyncSession],
    project: Project,
    overrides: dict[str, Any],
    param: str | None,
    code: str | None,
) -> None:
    """Each rule answers 400 with the param and code the SDK exposes; nothing runs or is stored."""
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(extra_body=body_with(overrides))
    assert_openai_400(caught.value, param, code)
    await assert_no_side_effects(upstream, sessions, project)


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        pytest.param({"temperature": 2.1}, "temperature", "decimal_above_max_value", id="temp"),
        pytest.param({"top_p": 1.5}, "top_p", "decimal_above_max_value", id="top_p"),
        pytest.param(
            {"max_output_tokens": 15}, "max_output_tokens", "integer_below_min_value", id="mot"
        ),
        pytest.param({"top_logprobs": 21}, "top_logprobs", "integer_above_max_value", id="tlp"),
        pytest.param({"service_tier": "gold"}, "service_tier", "invalid_value", id="tier"),
        pytest.param({"truncation": "sometimes"}, "truncation", "invalid_value", id="trunc"),
        pytest.param(
            {"metadata": {f"k{i}": "v" for i in range(17)}},
            "metadata",
            "object_above_max_properties",
            id="metadata",
        ),
    ],
)
async def test_create_rejects_typed_arguments(
    client: AsyncOpenAI,
    upstream: TestUpstream,
    sessions: async_sessionmaker[AsyncSession],
    project: Project,
    kwargs: dict[str, Any],
    param: str | None,
    code: str | None,
) -> None:
    """The same rules hold when values go through the SDK's own typed arguments."""
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="test-model", input="hello", **kwargs)
    assert_openai_400(caught.value, param, code)
    await assert_no_side_effects(upstream, sessions, project)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"max_output_tokens": 16}, id="max_output_tokens-16"),
        pytest.param({"temperature": 0, "top_p": 1}, id="temperature-0-top_p-1"),
        pytest.param({"temperature": 2, "top_p": 0}, id="temperature-2-top_p-0"),
        pytest.param({"top_logprobs": 0, "top_k": 0, "max_tool_calls": 0}, id="zeros"),
        pytest.param(
            {"metadata": {f"{i:064d}": "v" * 512 for i in range(16)}}, id="metadata-at-limits"
        ),
        pytest.param(
            {"stream": False, "background": False, "truncation": "disabled"}, id="off-switches"
        ),
        pytest.param({"safety_identifier": "x" * 128}, id="safety_identifier-128"),
    ],
)
async def test_create_accepts_limits(
    client: AsyncOpenAI,
    upstream: TestUpstream,
    sessions: async_sessionmaker[AsyncSession],
    project: Project,
    overrides: dict[str, Any],
) -> None:
    """The values right at each bound pass, so the rejections above are not off by one."""
    created = await client.responses.create(extra_body=body_with(overrides))
    assert created.status == "completed"
    assert created.output_text == "echo: hello"
    assert len(upstream.requests) == 1
    assert await stored_counts(sessions, project) == (1, 2)


async def test_max_output_tokens_16_reaches_upstream(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    """16 is OpenAI's minimum, so it must be accepted and passed on to the model."""
    created = await client.responses.create(model="test-model", input="hi", max_output_tokens=16)
    assert created.max_output_tokens == 16
    body = upstream.last_request().body
    assert 16 in (body.get("max_completion_tokens"), body.get("max_tokens"))


@pytest.mark.parametrize(
    ("content", "code", "param"),
    [
        pytest.param(b'{"model": "test-model", "input":', "invalid_json", None, id="truncated"),
        pytest.param(b'{"model": "test-model",}', "invalid_json", None, id="trailing-comma"),
        pytest.param(b"model=test-model", "invalid_json", None, id="form-encoded"),
        pytest.param(b"", "invalid_json", None, id="empty"),
        pytest.param(b"  \n", "invalid_json", None, id="whitespace"),
        pytest.param(b"[]", "invalid_type", None, id="array"),
        pytest.param(b"null", "invalid_type", None, id="null"),
    ],
)
async def test_raw_body_rejected(
    rapport: RapportServer,
    project: Project,
    upstream: TestUpstream,
    sessions: async_sessionmaker[AsyncSession],
    content: bytes,
    code: str,
    param: str | None,
) -> None:
    """Bodies the SDK cannot produce still get OpenAI's envelope with all four keys."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            rapport.base_url + "/responses",
            content=content,
            headers={
                "Authorization": f"Bearer {project.secret}",
                "Content-Type": "application/json",
            },
        )
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/json")
    envelope = answer.json()
    assert set(envelope) == {"error"}
    assert set(envelope["error"]) == ENVELOPE_KEYS
    assert envelope["error"]["type"] == "invalid_request_error"
    assert envelope["error"]["code"] == code
    assert envelope["error"]["param"] == param
    assert envelope["error"]["message"]
    await assert_no_side_effects(upstream, sessions, project)


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        pytest.param({"limit": 0}, "limit", "integer_below_min_value", id="limit-0"),
        pytest.param({"limit": 101}, "limit", "integer_above_max_value", id="limit-101"),
        pytest.param({"limit": "ten"}, "limit", "invalid_type", id="limit-text"),
        pytest.param({"order": "sideways"}, "order", "invalid_value", id="order"),
        pytest.param({"include[]": "nope"}, "include[0]", "invalid_value", id="include"),
    ],
)
async def test_input_items_query_rejected(
    client: AsyncOpenAI, query: dict[str, Any], param: str, code: str
) -> None:
    """Paging values are checked, against a response that exists, before any read."""
    created = await client.responses.create(model="test-model", input="hello")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.input_items.list(created.id, extra_query=query)
    assert_openai_400(caught.value, param, code)


async def test_input_items_limits_accepted(client: AsyncOpenAI) -> None:
    """1 and 100 are the bounds OpenAI allows, so both must pass."""
    created = await client.responses.create(model="test-model", input="hello")
    for limit in (1, 100):
        page = await client.responses.input_items.list(created.id, limit=limit, order="asc")
        assert len(page.data) == 1


async def test_input_items_sdk_arguments_rejected(client: AsyncOpenAI) -> None:
    """The SDK's typed `limit`/`order` reach the same checks as raw query values."""
    created = await client.responses.create(model="test-model", input="hello")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.input_items.list(created.id, limit=0)
    assert_openai_400(caught.value, "limit", "integer_below_min_value")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.input_items.list(created.id, limit=101)
    assert_openai_400(caught.value, "limit", "integer_above_max_value")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.input_items.list(created.id, order="sideways")  # type: ignore[arg-type]
    assert_openai_400(caught.value, "order", "invalid_value")


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"include[]": "nope"}, id="brackets"),
        pytest.param({"include": "nope"}, id="repeated-key"),
    ],
)
async def test_retrieve_include_rejected(client: AsyncOpenAI, query: dict[str, str]) -> None:
    """An unknown include on retrieve is a 400, in both query spellings clients use."""
    created = await client.responses.create(model="test-model", input="hello")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.retrieve(created.id, extra_query=query)
    assert_openai_400(caught.value, "include[0]", "invalid_value")


async def test_retrieve_include_via_sdk_rejected(client: AsyncOpenAI) -> None:
    """The SDK's own `include=[...]` argument is checked the same way."""
    created = await client.responses.create(model="test-model", input="hello")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.retrieve(created.id, include=["nope"])  # type: ignore[list-item]
    assert_openai_400(caught.value, "include[0]", "invalid_value")


# Inputs that once reached a 500 (a TypeError, a Postgres refusal) instead of a 400.
SERVER_ERROR_CASES = [
    pytest.param(
        {"input": [{"type": []}]},
        "input[0].type",
        id="item-type-array",
    ),
    pytest.param(
        {"tools": [{"type": {}}]},
        "tools[0].type",
        id="tool-type-object",
    ),
    pytest.param(
        {
            "tools": [function_tool("f")],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "auto",
                "tools": [{"type": "function", "name": []}],
            },
        },
        "tool_choice.tools[0]",
        id="allowed-tool-name-array",
    ),
    pytest.param(
        {"model": "m" * 201},
        "model",
        id="model-201-chars",
    ),
    pytest.param(
        {"instructions": "a\u0000b"},
        "instructions",
        id="instructions-nul",
    ),
    pytest.param(
        {"model": "test-model\u0000"},
        "model",
        id="model-nul",
    ),
]


@pytest.mark.parametrize(("overrides", "param"), SERVER_ERROR_CASES)
async def test_create_never_answers_500_for_bad_input(
    rapport: RapportServer,
    project: Project,
    upstream: TestUpstream,
    overrides: dict[str, Any],
    param: str,
) -> None:
    """Client mistakes must be the client's 400 naming the field, never a server fault."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            rapport.base_url + "/responses",
            json=body_with(overrides),
            headers={"Authorization": f"Bearer {project.secret}"},
        )
    assert answer.status_code < 500, answer.text
    if answer.status_code == 400:
        assert answer.json()["error"]["param"] == param
        assert upstream.requests == []
