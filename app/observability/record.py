"""The hooks the Responses pipeline calls: a response begun, a response settled, a tool run.

One line at each call site; what is noted (access-log facts, token and job counters, spans)
is decided here, so the pipeline's modules stay about responses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from app.observability import facts, metrics, tracing

if TYPE_CHECKING:
    from app.db.models import ResponseRow
    from app.runs.outcome import Outcome


def started(row: ResponseRow) -> None:
    facts.note_response(row.id, row.model)


def settled(row: ResponseRow, outcome: Outcome) -> None:
    usage = outcome.values.get("usage")
    facts.note_usage(usage)
    metrics.count_tokens(row.model, row.project_id, usage)
    if row.background:
        metrics.JOBS_FINISHED.labels(outcome.status).inc()


@contextlib.contextmanager
def tool_call(item: dict[str, Any]) -> Iterator[None]:
    kind = str(item.get("type", "tool"))
    metrics.HOSTED_TOOL_CALLS.labels(kind).inc()
    attributes = {
        "rapport.tool.type": kind,
        "rapport.tool.name": str(item.get("name") or ""),
        "rapport.item_id": str(item.get("id") or ""),
    }
    with tracing.span(f"tool.{kind}", attributes):
        yield
