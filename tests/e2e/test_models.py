"""`GET /v1/models` and `/v1/models/{model}`: named routes, then the catch-all upstream's list."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import Project, sdk, server_settings
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream


async def test_the_list_has_named_routes_then_the_upstreams_models(
    rapport: RapportServer, project: Project, upstream: TestUpstream
) -> None:
    async with httpx.AsyncClient(base_url=rapport.base_url, timeout=10) as http:
        answer = await http.get("/models", headers={"authorization": f"Bearer {project.secret}"})
    assert answer.status_code == 200
    document = answer.json()
    assert schema_errors("ListModelsResponse", document) == []
    ids = [model["id"] for model in document["data"]]
    # `dead-*` is a glob, not a model; `dead-listed` would go to that route, not the upstream.
    assert ids == ["renamed", "test-model", "org/Model-7B"]
    renamed = document["data"][0]
    assert renamed["object"] == "model"
    assert renamed["owned_by"] == "rapport"
    assert isinstance(renamed["created"], int)
    assert document["data"][2] == {
        "id": "org/Model-7B",
        "created": 1700000000,
        "owned_by": "org",
        "object": "model",
    }


async def test_the_upstreams_list_is_cached(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    await client.models.list()  # fetches, unless an earlier test filled the cache
    upstream.clear()
    await client.models.list()
    await client.models.retrieve("test-model")
    assert [r for r in upstream.requests if r.path == "/v1/models"] == []


async def test_retrieve_a_named_and_an_upstream_model(client: AsyncOpenAI) -> None:
    named = await client.models.retrieve("renamed")
    assert (named.id, named.object, named.owned_by) == ("renamed", "model", "rapport")
    listed = await client.models.retrieve("org/Model-7B")
    assert (listed.id, listed.created) == ("org/Model-7B", 1700000000)


@pytest.mark.parametrize("model", ["no-such-model", "dead-*", "dead-listed"])
async def test_an_unknown_model_is_openais_404(client: AsyncOpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await client.models.retrieve(model)
    error = missing.value.body
    assert error == {
        "message": f"The model '{model}' does not exist",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


@pytest.mark.parametrize("path", ["/models", "/models/test-model"])
@pytest.mark.parametrize("key", [None, "sk-gateway-not-a-key"])
async def test_a_key_is_required(rapport: RapportServer, path: str, key: str | None) -> None:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=rapport.base_url, timeout=10) as http:
        answer = await http.get(path, headers=headers)
    assert answer.status_code == 401
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


async def test_an_unreachable_upstream_contributes_nothing(
    database_url: str, upstream: TestUpstream, project: Project
) -> None:
    settings = server_settings(database_url, upstream, upstream_base_url="http://127.0.0.1:9/v1")
    server = RapportServer(settings).start()
    try:
        listed = await sdk(server, project).models.list()
        assert [model.id for model in listed.data] == ["renamed"]
        with pytest.raises(openai.NotFoundError):
            await sdk(server, project).models.retrieve("test-model")
    finally:
        server.stop()
