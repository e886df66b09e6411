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
