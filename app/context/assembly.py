"""THE place a response's context is built: history and new input, fitted to the window.

Tool-call pairing is checked on the whole context here, before anything is stored or sent,
with OpenAI's messages. Then compaction items are rendered and the context is truncated or
refused per `truncation` (`context/window.py`), or a compaction is planned when it passes
`context_management`'s threshold. The history itself is read by `context/history.py`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.context import compaction, sealed_reasoning, window
from app.context.history import History
from app.context.window import Budget, Entry
from app.errors import InvalidRequest
from app.tokens.counting import TokenCounter

# Without a compact_threshold, compaction starts at this share of the input budget.
DEFAULT_COMPACT_SHARE = 0.8


class Window(msgspec.Struct):
    """What the model is sent, what it is estimated to cost, and a compaction to run first."""

    context: list[dict[str, Any]]
    input_tokens: int
    input_counts: list[int]
    plan: compaction.Plan | None = None


def check_tool_pairing(context: list[dict[str, Any]]) -> None:
    """Every call has an output after it, and every output answers a call before it."""
    calls: list[str] = []
    answered: set[str] = set()
    for item in context:
        if item["type"] in ("function_call", "custom_tool_call"):
            calls.append(item["call_id"])
        elif item["type"] in ("function_call_output", "custom_tool_call_output"):
            if item["call_id"] not in calls:
                raise InvalidRequest(
                    f"No tool call found for function call output with call_id {item['call_id']}.",
                    param="input",
                )
            answered.add(item["call_id"])
    for call_id in calls:
        if call_id not in answered:
            raise InvalidRequest(
                f"No tool output found for function call {call_id}.", param="input"
            )


def budget_for(
    counter: TokenCounter,
    context_window: int | None,
    output_reserve: int | None,
    *,
    truncation: str | None,
    instructions: str | None,
    tools: Any,
) -> Budget:
    """The input budget: the window minus what is reserved for the answer (its
    max_output_tokens, else the route's), as OpenAI reserves it before truncating."""
    limit = None if context_window is None else context_window - (output_reserve or 0)
    return Budget(
        limit=limit,
        truncation=truncation or "disabled",
        fixed=window.fixed_tokens(counter, instructions, tools),
    )


def build_window(
    counter: TokenCounter,
    budget: Budget,
    past: History,
    input_bodies: list[dict[str, Any]],
    *,
    sealer: compaction.Sealer,
    compact_threshold: int | None = None,
    input_counts: list[int] | None = None,
) -> Window:
    """Render compactions, then fit to the budget — or plan a compaction when the rendered
    context passes `compact_threshold` (the answer's context is fitted after the summary)."""
    if past.omitted_tokens and budget.truncation != "auto":
        raise window.context_length_exceeded()  # the history was cut: it does not fit
    read_summary = compaction.summary_reader(sealer, counter)
    history, current = entries(counter, past, input_bodies, input_counts)
    input_counts = [entry.tokens for entry in current]
    rendered = window.render_compactions(history + current, read_summary)
    if compact_threshold is not None and window.total(rendered, budget) > compact_threshold:
        rendered_history = [entry for entry in rendered if not entry.current]
        if any(_replaceable(entry) for entry in rendered_history):
            plan = _plan(counter, budget, history, current, rendered, read_summary)
            return Window(
                [entry.body for entry in rendered],
                window.total(rendered, budget),
                input_counts,
                plan,
            )
    fitted = window.fit(rendered, budget)
    sent = sealed_reasoning.opened(sealer, [entry.body for entry in fitted])
    return Window(sent, window.total(fitted, budget), input_counts)


def entries(
    counter: TokenCounter,
    past: History,
    input_bodies: list[dict[str, Any]],
    input_counts: list[int] | None = None,
) -> tuple[list[Entry], list[Entry]]:
    """History and new input as counted entries: cached counts where the store has them."""
    history = [
        Entry(body, count if count is not None else item_tokens(counter, body))
        for body, count in zip(past.bodies, past.counts, strict=True)
    ]
    counts = input_counts or [item_tokens(counter, body) for body in input_bodies]
    current = [
        Entry(body, count, current=True) for body, count in zip(input_bodies, counts, strict=True)
    ]
    return history, current


def for_summary(
    counter: TokenCounter, budget: Budget, rendered: list[Entry]
) -> list[dict[str, Any]]:
    """What a summarizer reads: the rendered context, its oldest items cut if the window needs."""
    summarizer_budget = Budget(
        limit=budget.limit,
        truncation="auto",
        fixed=window.fixed_tokens(counter, compaction.SUMMARY_INSTRUCTIONS, None),
    )
    return [entry.body for entry in window.fit(rendered, summarizer_budget)]


def compact_threshold_for(settings: list[Any] | None, budget: Budget) -> int | None:
    """`context_management`'s threshold; a null threshold means a share of the budget."""
    for setting in settings or ():
        if setting.type == "compaction":
            if setting.compact_threshold is not None:
                return int(setting.compact_threshold)
            if budget.limit is not None:
                return int(budget.limit * DEFAULT_COMPACT_SHARE)
    return None


def _plan(
    counter: TokenCounter,
    budget: Budget,
    history: list[Entry],
    current: list[Entry],
    rendered: list[Entry],
    read_summary: Any,
) -> compaction.Plan:
    # The summarizer reads everything (the new input too, so that the summary that replaces
    # this turn's tool results in later turns has seen them), cut to the window if need be.
    summarized = for_summary(counter, budget, rendered)

    def rebuild(item: Entry) -> list[Entry]:
        return window.fit(
            window.render_compactions([*history, item], read_summary) + current, budget
        )

    return compaction.Plan(summarized, rebuild)


def item_tokens(counter: TokenCounter, body: dict[str, Any]) -> int:
    # A compaction item is never sent as itself: what it costs is its summary, counted where
    # it is rendered (window.render_compactions).
    return 0 if body.get("type") == "compaction" else counter.item(body)


def _replaceable(entry: Entry) -> bool:
    """An item a new compaction would fold into its summary (not a previous summary alone)."""
    body = entry.body
    if body.get("type", "message") == "message" and body.get("role") in (
        "user",
        "system",
        "developer",
    ):
        return False
    return "id" in body  # a rendered summary has no id: summarizing it alone gains nothing
