"""Authentication, health, readiness, unknown routes and request ids over plain HTTP."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import revoke_key
from tests.conftest import Project, new_project
from tests.harness import RapportServer


def root(server: RapportServer) -> str:
    return server.base_url.removesuffix("/v1")


async def test_health_and_ready_need_no_key(rapport: RapportServer) -> None:
    async with httpx.AsyncClient() as http:
        health = await http.get(f"{root(rapport)}/health")
        ready = await http.get(f"{root(rapport)}/ready")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, None),
        ("Bearer", None),
        ("Basic abc", None),
        ("Bearer sk-gateway-wrong", "invalid_api_key"),
    ],
)
async def test_missing_or_bad_key_is_401_in_openais_shape(
    rapport: RapportServer, authorization: str | None, code: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(headers=headers) as http:
        for method, path in (
            ("POST", "/responses"),
            ("GET", "/responses/resp_x"),
            ("DELETE", "/responses/resp_x"),
            ("GET", "/responses/resp_x/input_items"),
        ):
            answer = await http.request(method, f"{rapport.base_url}{path}", json={})
            assert answer.status_code == 401, path
            error = answer.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["type"] == "invalid_request_error"
            assert error["code"] == code
            assert "sk-gateway-wrong" not in error["message"]


async def test_revoked_key_is_refused(
    rapport: RapportServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    project: Project = await new_project(sessions)
    assert await revoke_key(sessions, project.key_id)
    client = AsyncOpenAI(base_url=rapport.base_url, api_key=project.secret, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.responses.create(model="test-model", input="hi")
    assert caught.value.code == "invalid_api_key"


async def test_unknown_route_and_method_answer_in_openais_shape(
    rapport: RapportServer, project: Project
) -> None:
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {project.secret}"}) as http:
        unknown = await http.get(f"{rapport.base_url}/nothing-here")
        wrong_method = await http.put(f"{rapport.base_url}/responses")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "Invalid URL (GET /v1/nothing-here)"
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()["error"]) == {"message", "type", "param", "code"}


async def test_every_answer_has_a_request_id(client: AsyncOpenAI) -> None:
    raw = await client.responses.with_raw_response.create(model="test-model", input="id?")
    assert raw.headers["x-request-id"].startswith("req_")
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.retrieve("resp_nope")
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")


async def test_openapi_schema_is_served(rapport: RapportServer) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{root(rapport)}/openapi/openapi.json")
    assert answer.status_code == 200
    assert "/v1/responses" in answer.json()["paths"]


async def test_ids_are_checked_as_openai_checks_them(
    rapport: RapportServer, project: Project
) -> None:
    """A wrong prefix is OpenAI's 400 invalid_value naming the parameter; a NUL byte in any id
    is a 400 too, never a 500 from the database."""
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(base_url=rapport.base_url, headers=headers, timeout=10) as http:
        await _check_ids(http)


async def _check_ids(http: httpx.AsyncClient) -> None:
    for path, param in (
        ("/conversations/abc", "conversation_id"),
        ("/conversations/abc/items", "conversation_id"),
        ("/responses/abc", "response_id"),
        ("/responses/abc/input_items", "response_id"),
        ("/responses/resp_%00x", "response_id"),
        ("/conversations/conv_x%00/items/msg_1", "conversation_id"),
        ("/conversations/conv_x/items/msg_%00", "item_id"),
        ("/responses/resp_x/input_items?after=msg_%00", "after"),
    ):
        answer = await http.get(path)
        assert answer.status_code == 400, (path, answer.text)
        error = answer.json()["error"]
        assert (error["param"], error["code"], error["type"]) == (
            param,
            "invalid_value",
            "invalid_request_error",
        ), path
    answer = await http.post("/responses", json={"model": "m", "input": "x", "conversation": "abc"})
    assert answer.json()["error"]["message"] == (
        "Invalid 'conversation': 'abc'. Expected an ID that begins with 'conv'."
    )
    answer = await http.post(
        "/responses", json={"model": "m", "input": "x", "previous_response_id": "msg_1"}
    )
    assert answer.json()["error"]["param"] == "previous_response_id"


DEEP = '{"a":' * 980 + "{}" + "}" * 980


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            '{"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":%s}]}',
            "tools[0]",
        ),
        (
            '{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[%s]}]}',
            "input[0]",
        ),
        (
            '{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"n","schema":%s}}}',
            "text",
        ),
        ('{"model":"m","input":"x","prompt":{"id":"pmpt_x","variables":{"v":%s}}}', "prompt"),
    ],
    ids=["tool-parameters", "tool-output", "schema", "prompt-variables"],
)
async def test_deep_json_is_a_400_naming_the_param(
    rapport: RapportServer, project: Project, body: str, param: str
) -> None:
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(base_url=rapport.base_url, headers=headers, timeout=10) as http:
        for path in ("/responses", "/responses/input_tokens"):
            if path.endswith("input_tokens") and param == "prompt":
                continue  # input_tokens takes no prompt
            answer = await http.post(path, content=body % DEEP)
            assert answer.status_code == 400, answer.text
            error = answer.json()["error"]
            assert (error["param"], error["code"]) == (param, "invalid_value")


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/v1/responses/resp_x", "DELETE, GET, OPTIONS"),
        ("/v1/conversations/conv_x", "DELETE, GET, OPTIONS, POST"),
        ("/v1/conversations/conv_x/items", "GET, OPTIONS, POST"),
        ("/admin/prompts", "GET, OPTIONS, POST"),
        ("/v1/responses", "OPTIONS, POST"),
    ],
)
async def test_options_lists_every_method_of_the_path(
    rapport: RapportServer, path: str, allow: str
) -> None:
    """Litestar 2 lists only the first handler's methods (litestar#4169); Allow must match
    the OpenAPI document, which lists them all."""
    async with httpx.AsyncClient() as http:
        answer = await http.options(f"{root(rapport)}{path}")
    assert answer.status_code == 204
    assert answer.headers["allow"] == allow
