"""A response past unit of work #1: what every kind of run (sync, streamed, background) starts
from, so the three share one settle and one lease."""

from __future__ import annotations

from typing import Any

import msgspec

from app.context.compaction import Plan
from app.context.fitting import Fitter
from app.context.history import History
from app.db.models import ResponseRow
from app.providers.base import GenerationRequest, Provider
from app.tools.toolset import Toolset


class Started(msgspec.Struct):
    """A response past unit of work #1: stored (unless store=false) and ready to generate."""

    row: ResponseRow
    provider: Provider
    generation: GenerationRequest
    store: bool
    input_ids: list[str]
    fitter: Fitter
    plan: Plan | None = None  # a compaction to run before the answer
    # The history it continues and its input as stored, each with its token counts: what a
    # WebSocket connection keeps so that the next turn can continue an unstored response.
    past: History = msgspec.field(default_factory=History)
    input: History = msgspec.field(default_factory=History)
    launched: Any = None  # the generation already under way (a task), when launched early
    tools: Toolset | None = None  # the hosted tools of its run
