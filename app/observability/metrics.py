"""Every Prometheus series Rapport exports, and `GET /metrics` that renders them.

The hot path only touches pre-resolved label children (a dict lookup and a locked add), so a
request pays a few microseconds for its metrics. Gauges that describe shared state (queue
depth, jobs by state, live workers) are read at scrape time instead, from Redis and the
database's partial index on active responses, never kept up to date per request.

Labels that a client chooses (the model name on the catch-all route) are capped: past
`MAX_LABEL_VALUES` distinct values, new ones are counted under "other", so a caller cannot
blow up the series count. With `uvicorn --workers N`, set `PROMETHEUS_MULTIPROC_DIR` and
each scrape adds up every process (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from app import __version__

# `_created` twins of every counter double a scrape's size for a timestamp nobody graphs.
disable_created_metrics()  # type: ignore[no-untyped-call]

MAX_LABEL_VALUES = 200
SCRAPE_TIMEOUT = 2.0  # per source: a scrape answers even while the database hangs
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

HTTP_REQUESTS = Counter(
    "rapport_http_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "rapport_http_request_duration_seconds",
    "Time from request to the end of the answer (a stream's whole length)",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
UPSTREAM_DURATION = Histogram(
    "rapport_upstream_duration_seconds",
    "Time of one upstream model call, by model route (the models file's name, * the catch-all)",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "rapport_upstream_errors",
    "Upstream model calls that failed, by model route and kind",
    ["route", "kind"],
)
TOKENS = Counter(
    "rapport_tokens",
    "Tokens of finished responses, by model, project and kind (input/output)",
    ["model", "project", "kind"],
)
JOBS_FINISHED = Counter(
    "rapport_jobs_finished",
    "Background responses this process ended, by final status",
    ["state"],
)
STREAM_RESUMES = Counter(
    "rapport_stream_resumes", "GET /v1/responses/{id}?stream=true: background streams resumed"
)
ACTIVE_STREAMS = Gauge(
    "rapport_active_streams", "Server-Sent Event answers open now", multiprocess_mode="livesum"
)
ACTIVE_SOCKETS = Gauge(
    "rapport_active_websockets", "WebSocket connections open now", multiprocess_mode="livesum"
)
SOCKET_RESPONSES = Counter(
    "rapport_websocket_responses",
    "Responses created on WebSocket connections, by the status an HTTP create would have had",
    ["status"],
)
HOSTED_TOOL_CALLS = Counter(
    "rapport_hosted_tool_calls", "Hosted tool calls Rapport ran, by tool type", ["tool"]
)
QUEUE_DEPTH = Gauge(
    "rapport_queue_depth",
    "Background jobs waiting in the queue (read at scrape)",
    multiprocess_mode="max",
)
JOBS = Gauge(
    "rapport_jobs",
    "Background responses by state, from the database (read at scrape)",
    ["state"],
    multiprocess_mode="max",
)
WORKERS = Gauge(
    "rapport_workers",
    "Workers with a fresh heartbeat in Redis (read at scrape)",
    multiprocess_mode="max",
)
BUILD = Gauge("rapport_build_info", "Always 1; the version is a label", ["version"])
BUILD.labels(__version__).set(1)


class CappedLabel:
    """Maps a client-chosen value to itself for the first `limit` distinct values seen."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self._seen: set[str] = set()
        self._limit = limit

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(value)
        return value


_models = CappedLabel()
_projects = CappedLabel()


def count_tokens(model: str, project_id: str, usage: dict[str, Any] | None) -> None:
    if not usage:
        return
    model_label, project_label = _models(model), _projects(project_id)
    for kind in ("input", "output"):
        tokens = usage.get(f"{kind}_tokens")
        if tokens:
            TOKENS.labels(model_label, project_label, kind).inc(tokens)


async def refresh_shared_gauges(runtime: Any) -> None:
    """Queue depth, jobs by state and live workers, read now (each best effort)."""
    from app.queue import heartbeat

    depth = getattr(runtime.queue, "depth", None)
    # Each source on its own: a scrape must not fail because one of them is down.
    if depth is not None:
        with contextlib.suppress(Exception):
            QUEUE_DEPTH.set(await asyncio.wait_for(depth(), SCRAPE_TIMEOUT))
    with contextlib.suppress(Exception):
        counts = await asyncio.wait_for(_active_jobs(runtime.engine), SCRAPE_TIMEOUT)
        for state in ("queued", "in_progress"):
            JOBS.labels(state).set(counts.get(state, 0))
    if runtime.redis is not None:
        with contextlib.suppress(Exception):
            WORKERS.set(
                await asyncio.wait_for(heartbeat.live_workers(runtime.redis), SCRAPE_TIMEOUT)
            )


async def _active_jobs(engine: Any) -> dict[str, int]:
    """Background responses queued or running: read through the partial index on status."""
    from app.db.models import ResponseRow

    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(ResponseRow.status, sa.func.count())
            .where(ResponseRow.background, ResponseRow.status.in_(("queued", "in_progress")))
            .group_by(ResponseRow.status)
        )
        return {status: count for status, count in rows}


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics_route(request: Request[Any, Any, Any]) -> Response[bytes]:
    await refresh_shared_gauges(request.app.state.runtime)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST, status_code=200)
