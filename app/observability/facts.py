"""What one request did, noted by the code that knows it, for its access-log line.

The access middleware puts a fresh `RequestFacts` in a context variable; the caller's
resolution, the response service and the provider wrapper write into it through the `note_*`
functions, which do nothing outside a request (a worker's run, a sweeper). A task started
from a request copies the context, so a run's upstream time lands on its request's facts.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any


class RequestFacts:
    __slots__ = (
        "input_tokens",
        "model",
        "output_tokens",
        "project_id",
        "response_id",
        "upstream_seconds",
    )

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.project_id: str | None = None
        self.model: str | None = None
        self.upstream_seconds: float | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None


current: ContextVar[RequestFacts | None] = ContextVar("rapport_request_facts", default=None)


def note_caller(project_id: str) -> None:
    facts = current.get()
    if facts is not None:
        facts.project_id = project_id


def note_response(response_id: str, model: str) -> None:
    facts = current.get()
    if facts is not None:
        facts.response_id = response_id
        facts.model = model


def note_upstream(seconds: float) -> None:
    """Added up: a run with hosted tools or a compaction calls the model several times."""
    facts = current.get()
    if facts is not None:
        facts.upstream_seconds = (facts.upstream_seconds or 0.0) + seconds


def note_usage(usage: dict[str, Any] | None) -> None:
    facts = current.get()
    if facts is not None and usage:
        facts.input_tokens = usage.get("input_tokens")
        facts.output_tokens = usage.get("output_tokens")
