"""The access log, `/metrics` and traces, after known traffic of each kind."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from app.logs import ConsoleFormatter, JsonFormatter
from app.observability import tracing
from tests.conftest import UPSTREAM_KEY, Project, sdk, server_settings
from tests.harness import RapportServer
from tests.upstream import TestUpstream

ROUTE = "/v1/responses"
SECRET_INPUT = "the body text that no log may hold"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The access log's records, rendered as the JSON lines `rapport serve` writes."""
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "rapport.access"
    ]


def root_of(server: RapportServer) -> str:
    return server.base_url.removesuffix("/v1")


async def wait_until_ended(client: AsyncOpenAI, response_id: str) -> None:
    for _ in range(200):
        if (await client.responses.retrieve(response_id)).status not in ("queued", "in_progress"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{response_id} did not end")


async def test_one_line_per_request_of_each_kind(
    client: AsyncOpenAI, rapport: RapportServer, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rapport.access")
    created = await client.responses.create(model="test-model", input=SECRET_INPUT)
    async with client.responses.stream(model="test-model", input=SECRET_INPUT) as stream:
        streamed = await stream.get_final_response()
    queued = await client.responses.create(model="test-model", input=SECRET_INPUT, background=True)
    await wait_until_ended(client, queued.id)
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="test-model", input=SECRET_INPUT, temperature=9)
    bad_key = sdk(rapport, Project(project.project_id, project.key_id, "sk-gateway-wrong"))
    with pytest.raises(openai.AuthenticationError):
        await bad_key.responses.retrieve(created.id)
    async with httpx.AsyncClient() as http:
        await http.get(f"{root_of(rapport)}/no/such/route")

    lines = access_lines(caplog)
    by_id = {line.get("response_id"): line for line in lines if line["route"] == ROUTE}
    for response, stream_flag in ((created, None), (streamed, True), (queued, None)):
        line = by_id[response.id]
        assert line["method"] == "POST"
        assert line["status"] == 200
        assert line["project_id"] == project.project_id
        assert line["model"] == "test-model"
        assert isinstance(line["duration_ms"], float)
        assert str(line["request_id"]).startswith("req_")
        assert line.get("stream") is stream_flag
    for response in (created, streamed):  # the foreground runs went upstream within the request
        line = by_id[response.id]
        assert isinstance(line["upstream_ms"], float)
        assert response.usage is not None
        assert line["input_tokens"] == response.usage.input_tokens
        assert line["output_tokens"] == response.usage.output_tokens
    assert "upstream_ms" not in by_id[queued.id]  # its run is the queue's, not the request's

    statuses = {(line["route"], line["status"]) for line in lines}
    assert (ROUTE, 400) in statuses
    assert ("/v1/responses/{response_id}", 401) in statuses
    assert ("unmatched", 404) in statuses
    unauthorized = next(line for line in lines if line["status"] == 401)
    assert unauthorized["response_id"] == created.id
    assert "project_id" not in unauthorized

    everything = "\n".join(json.dumps(line) for line in lines)
    everything += "\n".join(ConsoleFormatter().format(r) for r in caplog.records)
    for secret in (SECRET_INPUT, project.secret, "sk-gateway-wrong", UPSTREAM_KEY):
        assert secret not in everything


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_known_traffic(
    client: AsyncOpenAI, rapport: RapportServer, project: Project
) -> None:
    scrape = f"{root_of(rapport)}/metrics"
    async with httpx.AsyncClient() as http:
        before = samples((await http.get(scrape)).text)
    for _ in range(3):
        await client.responses.create(model="test-model", input="count me")
    async with client.responses.stream(model="test-model", input="count me") as stream:
        await stream.get_final_response()
    with pytest.raises(openai.InternalServerError):
        await client.responses.create(model="dead-model", input="count me")
    async with httpx.AsyncClient() as http:
        answer = await http.get(scrape)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    after = samples(answer.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "rapport_http_requests_total"
    assert grew(requests, method="POST", route=ROUTE, status="200") == 4
    assert grew(requests, method="POST", route=ROUTE, status="502") == 1
    assert grew("rapport_http_request_duration_seconds_count", method="POST", route=ROUTE) == 5
    assert grew("rapport_upstream_duration_seconds_count", route="*") == 4
    assert grew("rapport_upstream_errors_total", route="dead-*", kind="UpstreamUnavailable") == 1

    def tokens(kind: str) -> float:
        # The project label is capped: once the shared server has seen that many projects
        # (other tests made them), a new one is counted as "other".
        return sum(
            grew("rapport_tokens_total", kind=kind, model="test-model", project=label)
            for label in (project.project_id, "other")
        )

    assert tokens("input") > 0
    assert tokens("output") > 0
    for gauge in ("rapport_active_streams", "rapport_active_websockets", "rapport_queue_depth"):
        assert (gauge, frozenset()) in after
    assert ("rapport_jobs", frozenset({("state", "queued")})) in after
    assert ("rapport_stream_resumes_total", frozenset()) in after
    assert value(after, "rapport_build_info", version="0.1.0") == 1
    # No key needed, none shown.
    assert project.secret not in answer.text


@pytest.fixture
def spans(
    database_url: str, upstream: TestUpstream
) -> Iterator[tuple[RapportServer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter)
    server = RapportServer(server_settings(database_url, upstream)).start()
    try:
        yield server, exporter
    finally:
        server.stop()
        tracing.reset()


async def test_traces_when_configured(
    spans: tuple[RapportServer, InMemorySpanExporter], project: Project
) -> None:
    server, exporter = spans
    await sdk(server, project).responses.create(model="test-model", input="trace me")
    names = [span.name for span in exporter.get_finished_spans()]
    assert "db.unit_of_work" in names
    assert "upstream.generate" in names
    assert any(name.startswith("POST /v1/responses") for name in names), names
    async with httpx.AsyncClient() as http:
        await http.get(f"{root_of(server)}/health")
    assert not any("/health" in span.name for span in exporter.get_finished_spans())
