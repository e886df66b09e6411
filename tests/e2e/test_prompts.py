"""Prompt templates: the /admin/prompts API, rendering on create, and the `rapport prompts` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import Project
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

IMAGE = {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"}


def admin(server: RapportServer, project: Project) -> httpx.AsyncClient:
    root = server.base_url.removesuffix("/v1")
    headers = {"authorization": f"Bearer {project.secret}"}
    return httpx.AsyncClient(base_url=f"{root}/admin", headers=headers, timeout=10)


@pytest.fixture
async def http(rapport: RapportServer, project: Project) -> AsyncIterator[httpx.AsyncClient]:
    async with admin(rapport, project) as client:
        yield client


async def make(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await http.post("/prompts", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_template_renders_into_instructions_and_input(
    http: httpx.AsyncClient, client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    prompt = await make(
        http,
        instructions="You help {{team}}.",
        input=[
            {"role": "user", "content": "Describe {{thing}} briefly."},
            {"role": "user", "content": [{"type": "input_text", "text": "{{picture}}"}]},
        ],
    )
    assert (prompt["object"], prompt["version"]) == ("prompt", "1")
    assert prompt["id"].startswith("pmpt_")
    raw = await client.responses.with_raw_response.create(
        model="test-model",
        prompt={
            "id": prompt["id"],
            "variables": {"team": "sales", "thing": "a cat", "picture": IMAGE},
        },
        input="and be kind",
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    assert document["prompt"]["id"] == prompt["id"]
    assert document["instructions"] == "You help sales."
    messages = upstream.last_request().body["messages"]
    assert messages[0] == {"role": "system", "content": "You help sales."}
    assert messages[1] == {"role": "user", "content": "Describe a cat briefly."}
    assert messages[2]["content"] == [
        {"type": "image_url", "image_url": {"url": IMAGE["image_url"], "detail": "low"}}
    ]
    assert messages[3] == {"role": "user", "content": "and be kind"}


async def test_versions_and_the_request_s_own_instructions(
    http: httpx.AsyncClient, client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    first = await make(http, instructions="v1 rules", input="hello")
    second = await make(http, id=first["id"], instructions="v2 rules", input="hello")
    assert second["version"] == "2"
    await client.responses.create(model="test-model", prompt={"id": first["id"]})
    assert upstream.last_request().body["messages"][0]["content"] == "v2 rules"
    await client.responses.create(model="test-model", prompt={"id": first["id"], "version": "1"})
    assert upstream.last_request().body["messages"][0]["content"] == "v1 rules"
    await client.responses.create(
        model="test-model", prompt={"id": first["id"]}, instructions="mine"
    )
    assert upstream.last_request().body["messages"][0]["content"] == "mine"
    listed = (await http.get("/prompts")).json()
    assert [(p["id"], p["version"]) for p in listed["data"]] == [(first["id"], "2")]
    assert (await http.get(f"/prompts/{first['id']}?version=1")).json()["instructions"] == (
        "v1 rules"
    )


@pytest.mark.parametrize(
    ("variables", "param", "code"),
    [
        ({}, "prompt.variables", "missing_required_parameter"),
        ({"thing": "x", "extra": "y"}, "prompt.variables.extra", "invalid_value"),
        ({"thing": IMAGE}, "prompt.variables.thing", "invalid_value"),
    ],
)
async def test_variable_mistakes_are_400s(
    http: httpx.AsyncClient,
    client: AsyncOpenAI,
    variables: dict[str, Any],
    param: str,
    code: str,
) -> None:
    prompt = await make(http, input="Describe {{thing}} briefly.")
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="test-model", prompt={"id": prompt["id"], "variables": variables}
        )
    assert (refused.value.param, refused.value.code) == (param, code)


async def test_templates_are_private_to_their_project(
    http: httpx.AsyncClient,
    rapport: RapportServer,
    other_project: Project,
    other_client: AsyncOpenAI,
) -> None:
    prompt = await make(http, input="hi")
    async with admin(rapport, other_project) as foreign:
        assert (await foreign.get(f"/prompts/{prompt['id']}")).status_code == 404
        assert (await foreign.delete(f"/prompts/{prompt['id']}")).status_code == 404
    with pytest.raises(openai.BadRequestError) as refused:
        await other_client.responses.create(model="test-model", prompt={"id": prompt["id"]})
    assert refused.value.param == "prompt"
    deleted = await http.delete(f"/prompts/{prompt['id']}")
    assert deleted.json() == {"id": prompt["id"], "object": "prompt.deleted", "deleted": True}
    assert (await http.get(f"/prompts/{prompt['id']}")).status_code == 404


async def test_admin_routes_need_a_key_and_valid_templates(
    rapport: RapportServer, http: httpx.AsyncClient
) -> None:
    root = rapport.base_url.removesuffix("/v1")
    async with httpx.AsyncClient(base_url=root, timeout=10) as anonymous:
        answer = await anonymous.get("/admin/prompts")
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
    bad = await http.post("/prompts", json={"input": [{"role": "robot", "content": "x"}]})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"].startswith("input[0]")


def test_the_cli_manages_templates(database_url: str, project: Project, tmp_path: Path) -> None:
    env = {**os.environ, "RAPPORT_DATABASE_URL": database_url}
    items = tmp_path / "input.json"
    items.write_text(json.dumps([{"role": "user", "content": "About {{topic}}"}]))

    def rapport(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", "prompts", *argv, "--project", project.project_id],
            env=env,
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
        )

    made = rapport("create", "--instructions", "Be brief.", "--input-file", str(items))
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert (created["version"], created["instructions"]) == ("1", "Be brief.")
    listed = rapport("list")
    assert created["id"] in listed.stdout
    shown = json.loads(rapport("show", created["id"], "--version", "1").stdout)
    assert shown["input"] == [{"role": "user", "content": "About {{topic}}"}]
    assert rapport("delete", created["id"]).returncode == 0
    missing = rapport("show", created["id"])
    assert missing.returncode == 1
    assert "not found" in missing.stderr


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("version=2147483648", "integer_above_max_value"),  # past a 32-bit column: was a 500
        ("version=0", "integer_below_min_value"),
        ("version=-1", "integer_below_min_value"),
        ("version=two", "invalid_type"),
    ],
)
async def test_a_version_outside_the_documented_range_is_a_400(
    http: httpx.AsyncClient, query: str, code: str
) -> None:
    prompt = await make(http, input="hi")
    answer = await http.get(f"/prompts/{prompt['id']}?{query}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "version"
    assert answer.json()["error"]["code"] == code


async def test_a_prompt_id_with_foreign_characters_is_a_400_not_a_database_error(
    http: httpx.AsyncClient,
) -> None:
    """A NUL byte reached Postgres and came back a 500 (found by schemathesis)."""
    for answer in (
        await http.get("/prompts/pmpt_%00"),
        await http.delete("/prompts/pmpt_%00"),
        await http.post("/prompts", json={"id": "pmpt_\u0000", "input": "hi"}),
    ):
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_value"
    assert (await http.post("/prompts", json={"id": "x" * 200, "input": "hi"})).status_code == 400


async def test_a_create_naming_a_prompt_id_with_foreign_characters_is_a_400(
    rapport: RapportServer, project: Project
) -> None:
    """`prompt.id` with a NUL byte reached Postgres and came back a 500 (found by schemathesis)."""
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(base_url=rapport.base_url, headers=headers) as http:
        answer = await http.post(
            "/responses", json={"model": "test-model", "prompt": {"id": "pmpt_\u0000x"}}
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "prompt.id"
