"""One request's view of the context window: its counter, budget and compaction threshold.

Made once per create (and per background claim, and per input-token count) from the model's
route and the request, so the service, the worker and the counting endpoint fit a context the
same way (the fitting itself is `context.build_window`).
"""

from __future__ import annotations

from typing import Any

from app import offload
from app.config import ModelRoute
from app.context import assembly, compaction
from app.context.assembly import Window
from app.context.history import Cut, History
from app.tokens import models
from app.tokens.counting import TokenCounter


class Fitter:
    def __init__(
        self,
        *,
        model: str,
        route: ModelRoute,
        sealer: compaction.Sealer,
        instructions: str | None,
        tools: Any,
        truncation: str | None,
        max_output_tokens: int | None,
        context_management: list[Any] | None = None,
    ) -> None:
        self.counter = TokenCounter(models.encoding_for(model, route))
        self.sealer = sealer
        window, route_reserve = models.window_for(model, route)
        self.budget = assembly.budget_for(
            self.counter,
            window,
            max_output_tokens if max_output_tokens is not None else route_reserve,
            truncation=truncation,
            instructions=instructions,
            tools=tools,
        )
        self.compact_threshold = assembly.compact_threshold_for(context_management, self.budget)
        # Counts made ahead by `precount` (or by `cut`), by the identity of the item counted.
        self._known: dict[int, tuple[dict[str, Any], int]] = {}

    @property
    def encoding(self) -> str:
        return self.counter.encoding_name

    def cut(self, input_bodies: list[dict[str, Any]]) -> Cut | None:
        """How much history to read: the window less instructions, tools and this input (and
        the answer's reserve, already out of the limit). None — read it all — without a
        window, or when a compaction may need the whole history to summarize."""
        if self.budget.limit is None or self.compact_threshold is not None:
            return None
        budget = self.budget.limit - self.budget.fixed - sum(self.counts(input_bodies))
        pinned = frozenset(
            str(body["call_id"])
            for body in input_bodies
            if body.get("type") in ("function_call_output", "custom_tool_call_output")
        )
        return Cut(max(budget, 0), pinned)

    def window(self, past: History, input_bodies: list[dict[str, Any]]) -> Window:
        return assembly.build_window(
            self.counter,
            self.budget,
            past,
            input_bodies,
            sealer=self.sealer,
            compact_threshold=self.compact_threshold,
            input_counts=self.counts(input_bodies),
        )

    async def precount(self, bodies: list[dict[str, Any]]) -> None:
        """Count `bodies` now — in a worker thread when they are big — so that `cut`, `window`
        and `counts` find them counted: those run on the event loop, the first two inside
        unit of work #1, where a long count would stall every request and hold a connection."""
        await offload.off_loop(lambda: self.counts(bodies), bodies)

    def counts(self, bodies: list[dict[str, Any]]) -> list[int]:
        """Token counts for the item store's cache (input and output items), each body
        counted once however often it is asked for."""
        counts = []
        for body in bodies:
            known = self._known.get(id(body))
            if known is None or known[0] is not body:
                known = self._known[id(body)] = (body, assembly.item_tokens(self.counter, body))
            counts.append(known[1])
        return counts


def for_request(
    request: Any, model: str, route: ModelRoute, sealer: compaction.Sealer, tools: Any
) -> Fitter:
    """The fitter of a create (or input-token count) request's own parameters."""
    return Fitter(
        model=model,
        route=route,
        sealer=sealer,
        instructions=request.instructions,
        tools=tools,
        truncation=request.truncation,
        max_output_tokens=getattr(request, "max_output_tokens", None),
        context_management=getattr(request, "context_management", None),
    )
