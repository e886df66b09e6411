"""Tool sets as Codex sends them: namespaces, `additional_tools` input items, tool search with
deferred tools, and hosted tools a route leaves out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import ConfigError, load_routes
from tests.conftest import Project, rapport_with_routes
from tests.e2e.test_streaming import check_stream, parse_frames
from tests.harness import RapportServer
from tests.openapi import schema_errors
from tests.upstream import TestUpstream

CRM: dict[str, Any] = {
    "type": "namespace",
    "name": "crm",
    "description": "Customer records.",
    "tools": [
        {"type": "function", "name": "lookup", "description": "Find a customer.",
         "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}}},
        {"type": "custom", "name": "note", "description": "Write a note."},
    ],
}  # fmt: skip
PLAIN_LOOKUP = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


@pytest.fixture
async def http(rapport: RapportServer, project: Project) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {project.secret}"}
    async with httpx.AsyncClient(base_url=rapport.base_url, headers=headers, timeout=10) as http:
        yield http


async def create(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await http.post("/responses", json={"model": "test-model", **body})
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    assert schema_errors("Response", document) == []
    return document


def offered(upstream: TestUpstream) -> dict[str, dict[str, Any]]:
    tools = upstream.last_request().body.get("tools") or []
    return {tool["function"]["name"]: tool["function"] for tool in tools}


async def test_namespaced_functions_get_unambiguous_upstream_names(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    document = await create(
        http, input='find [tool:crm__lookup:{"id": 7}]', tools=[PLAIN_LOOKUP, CRM]
    )
    assert list(offered(upstream)) == ["lookup", "crm__lookup", "crm__note"]
    assert "Customer records." in offered(upstream)["crm__lookup"]["description"]
    [call] = document["output"]
    assert (call["type"], call["name"], call["namespace"]) == ("function_call", "lookup", "crm")
    assert call["arguments"] == '{"id": 7}'
    assert document["tools"][1] == {
        "type": "namespace",
        "name": "crm",
        "description": "Customer records.",
        "tools": [
            {"type": "function", "name": "lookup", "description": "Find a customer.",
             "parameters": CRM["tools"][0]["parameters"], "strict": True},
            {"type": "custom", "name": "note", "description": "Write a note.",
             "format": {"type": "text"}},
        ],
    }  # fmt: skip
    plain = await create(http, input="[tool:lookup:{}]", tools=[PLAIN_LOOKUP, CRM])
    assert "namespace" not in plain["output"][0]
    custom = await create(http, input='[tool:crm__note:{"input": "hi"}]', tools=[CRM])
    assert (custom["output"][0]["type"], custom["output"][0]["namespace"]) == (
        "custom_tool_call",
        "crm",
    )
    assert custom["output"][0]["input"] == "hi"


async def test_a_namespaced_call_goes_back_under_its_upstream_name(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    first = await create(http, input='[tool:crm__lookup:{"id": 7}]', tools=[PLAIN_LOOKUP, CRM])
    call = first["output"][0]
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "Ada"}
    await create(http, previous_response_id=first["id"], input=[output], tools=[PLAIN_LOOKUP, CRM])
    assistant, tool = upstream.last_request().body["messages"][-2:]
    assert assistant["tool_calls"][0]["function"]["name"] == "crm__lookup"
    assert tool["content"] == "Ada"
    # Replayed as input with its namespace, the call maps the same way.
    history = [{"role": "user", "content": "find"}, call, output]
    await create(http, input=history, tools=[CRM], store=False)
    assert upstream.last_request().body["messages"][-2]["tool_calls"][0]["function"]["name"] == (
        "crm__lookup"
    )


async def test_a_namespaced_call_streams_with_its_namespace(http: httpx.AsyncClient) -> None:
    body = {"model": "test-model", "input": "[tool:crm__lookup:{}]", "tools": [CRM], "stream": True}
    async with http.stream("POST", "/responses", json=body) as answer:
        events = parse_frames((await answer.aread()).decode())
    final = check_stream(events)
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert (added["item"]["name"], added["item"]["namespace"]) == ("lookup", "crm")
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["name"] == "lookup"
    assert final["output"][0]["namespace"] == "crm"


async def test_additional_tools_items_offer_their_tools_from_there_on(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    extra = {"type": "additional_tools", "role": "developer", "tools": [CRM]}
    first = await create(http, input=[extra, {"role": "user", "content": "[tool:crm__lookup:{}]"}])
    assert first["tools"] == []
    assert list(offered(upstream)) == ["crm__lookup", "crm__note"]
    assert [m["role"] for m in upstream.last_request().body["messages"]] == ["user"]
    call = first["output"][0]
    assert call["namespace"] == "crm"
    listed = (await http.get(f"/responses/{first['id']}/input_items?order=asc")).json()["data"]
    assert listed[0]["type"] == "additional_tools"
    assert listed[0]["id"].startswith("at_")
    assert listed[0]["tools"] == [CRM]
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "Ada"}
    await create(http, previous_response_id=first["id"], input=[output])
    assert list(offered(upstream)) == ["crm__lookup", "crm__note"]  # still, from the history


async def test_additional_tools_are_validated_like_tools(http: httpx.AsyncClient) -> None:
    extra = {"type": "additional_tools", "role": "developer", "tools": [{"type": "function"}]}
    answer = await http.post("/responses", json={"model": "test-model", "input": [extra]})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == (
        "input[0].tools[0].name",
        "missing_required_parameter",
    )


DEFERRED = {"type": "function", "name": "calendar", "defer_loading": True, "parameters": {}}
SEARCH = {
    "type": "tool_search",
    "execution": "client",
    "description": "Find more tools.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
}


async def test_a_client_tool_search_loads_deferred_tools(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    first = await create(
        http, input='[tool:tool_search:{"query": "calendar"}]', tools=[SEARCH, DEFERRED]
    )
    assert list(offered(upstream)) == ["tool_search"]  # the deferred tool waits to be found
    assert offered(upstream)["tool_search"]["parameters"] == SEARCH["parameters"]
    [call] = first["output"]
    assert schema_errors("ToolSearchCall", call) == []
    assert (call["type"], call["execution"], call["arguments"]) == (
        "tool_search_call",
        "client",
        {"query": "calendar"},
    )
    loaded = {
        "type": "tool_search_output",
        "call_id": call["call_id"],
        "execution": "client",
        "tools": [{**DEFERRED, "defer_loading": False}],
    }
    second = await create(
        http, previous_response_id=first["id"], input=[loaded], tools=[SEARCH, DEFERRED]
    )
    assert list(offered(upstream)) == ["calendar", "tool_search"]
    assistant, tool = upstream.last_request().body["messages"][-2:]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "tool_search",
        "arguments": '{"query": "calendar"}',
    }
    assert tool["content"] == "Tools loaded for the next step: calendar."
    assert second["output"][0]["type"] == "message"


async def test_without_a_client_search_deferred_tools_are_offered_at_once(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    document = await create(http, input="hi", tools=[{"type": "tool_search"}, DEFERRED])
    assert list(offered(upstream)) == ["calendar"]
    assert [tool["type"] for tool in document["tools"]] == ["tool_search", "function"]


async def test_hosted_tools_are_refused_unless_the_route_drops_them(
    database_url: str, upstream: TestUpstream, project: Project, http: httpx.AsyncClient
) -> None:
    tools = [{"type": "file_search"}, {"type": "image_generation"}, PLAIN_LOOKUP]
    refused = await http.post(
        "/responses", json={"model": "test-model", "input": "x", "tools": tools}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "tools[0].type"
    routes = {"codex-model": {"drop_hosted_tools": ("file_search", "image_generation")}}
    with rapport_with_routes(database_url, upstream, **routes) as server:
        headers = {"authorization": f"Bearer {project.secret}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=10) as own:
            extra = {
                "type": "additional_tools",
                "role": "developer",
                "tools": [{"type": "file_search"}],
            }
            answer = await own.post(
                "/responses",
                json={
                    "model": "codex-model",
                    "tools": tools,
                    "input": [extra, {"role": "user", "content": "x"}],
                },
            )
    assert answer.status_code == 200, answer.text
    assert [tool["name"] for tool in answer.json()["tools"]] == ["lookup"]
    assert list(offered(upstream)) == ["lookup"]


def test_drop_hosted_tools_names_only_hosted_types(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text('[[models]]\nname = "m"\ndrop_hosted_tools = ["web_search", "local_shell"]\n')
    with pytest.raises(ConfigError, match="local_shell is not a hosted tool type"):
        load_routes(models)
    models.write_text('[[models]]\nname = "m"\ndrop_hosted_tools = ["web_search", "mcp"]\n')
    assert load_routes(models)[0].drop_hosted_tools == ("web_search", "mcp")


async def test_codexs_responses_lite_request(
    http: httpx.AsyncClient, upstream: TestUpstream
) -> None:
    """Codex with a `responses_lite` model: no top-level tools; they come as an input item,
    custom `exec` in namespace `functions`, with a hosted web_search the route must drop (here:
    refused, the default)."""
    functions = {
        "type": "namespace",
        "name": "functions",
        "description": "Local code mode",
        "tools": [{"type": "custom", "name": "exec", "description": "Run code."}],
    }
    body = {
        "model": "test-model",
        "input": [
            {"type": "additional_tools", "role": "developer", "tools": [functions, SEARCH]},
            {"role": "user", "content": '[tool:functions__exec:{"input": "ls"}]'},
        ],
        "store": False,
        "reasoning": {"context": "all_turns"},
        "client_metadata": {"ws_request_header_x_openai_internal_codex_responses_lite": "true"},
    }
    document = await create(http, **body)
    [call] = document["output"]
    assert (call["type"], call["name"], call["namespace"], call["input"]) == (
        "custom_tool_call",
        "exec",
        "functions",
        "ls",
    )
    assert list(offered(upstream)) == ["functions__exec", "tool_search"]
    follow = [
        *body["input"],
        call,
        {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "a"},
    ]
    answer = await create(http, **{**body, "input": follow})
    assert answer["output"][0]["content"][0]["text"] == "done: a"
    sent = upstream.last_request().body
    assert json.loads(sent["messages"][-2]["tool_calls"][0]["function"]["arguments"]) == {
        "input": "ls"
    }
