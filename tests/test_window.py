"""Fitting a context to a window: truncation, refusals and compaction rendering, item by item."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.context import assembly, compaction
from app.context.history import History
from app.context.window import Budget, Entry, fit, render_compactions
from app.errors import InvalidRequest
from app.tokens.counting import TokenCounter


class JsonSealer:
    """A transparent sealer: the window code only needs seal/open to be inverse."""

    def seal(self, payload: dict[str, Any]) -> str:
        return base64.b64encode(json.dumps(payload).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        return dict(json.loads(base64.b64decode(token)))


def user(text: str) -> dict[str, Any]:
    return {"id": f"msg_{text}", "type": "message", "role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"id": f"msg_{text}", "type": "message", "role": "assistant", "content": text}


def call(call_id: str) -> dict[str, Any]:
    return {"id": f"fc_{call_id}", "type": "function_call", "call_id": call_id, "name": "f"}


def output(call_id: str) -> dict[str, Any]:
    return {"id": f"fco_{call_id}", "type": "function_call_output", "call_id": call_id}


def entries(*bodies: dict[str, Any], current_from: int | None = None) -> list[Entry]:
    """Every item costs 10 tokens, so budgets read as item counts."""
    cut = len(bodies) if current_from is None else current_from
    return [Entry(body, 10, current=index >= cut) for index, body in enumerate(bodies)]


def ids(fitted: list[Entry]) -> list[str]:
    return [entry.body["id"] for entry in fitted]


def budget(limit: int | None, truncation: str = "auto", fixed: int = 5) -> Budget:
    return Budget(limit=limit, truncation=truncation, fixed=fixed)


def test_exactly_at_the_budget_fits_and_one_over_does_not() -> None:
    context_ = entries(user("a"), assistant("b"), user("c"), current_from=2)
    assert fit(context_, budget(35, "disabled")) == context_
    with pytest.raises(InvalidRequest) as refused:
        fit(context_, budget(34, "disabled"))
    assert refused.value.code == "context_length_exceeded"
    assert refused.value.param == "input"
    assert refused.value.message == (
        "Your input exceeds the context window of this model. "
        "Please adjust your input and try again."
    )


def test_auto_drops_whole_items_from_the_start_only_as_many_as_needed() -> None:
    context_ = entries(
        user("a"), assistant("b"), user("c"), assistant("d"), user("e"), current_from=4
    )
    assert ids(fit(context_, budget(45))) == ["msg_b", "msg_c", "msg_d", "msg_e"]
    assert ids(fit(context_, budget(34))) == ["msg_d", "msg_e"]


def test_the_current_input_is_never_dropped_and_alone_too_big_is_refused() -> None:
    context_ = entries(user("a"), user("b"), user("c"), current_from=1)
    assert ids(fit(context_, budget(25))) == ["msg_b", "msg_c"]
    with pytest.raises(InvalidRequest) as refused:
        fit(context_, budget(24))
    assert refused.value.code == "context_length_exceeded"


def test_a_call_and_its_output_go_together() -> None:
    context_ = entries(user("a"), call("1"), output("1"), assistant("b"), user("c"), current_from=4)
    # Dropping the user message and the call is enough by count, but the output must follow.
    assert ids(fit(context_, budget(35))) == ["msg_b", "msg_c"]


def test_a_call_answered_in_the_new_input_is_kept() -> None:
    context_ = entries(user("a"), assistant("b"), call("1"), output("1"), current_from=3)
    assert ids(fit(context_, budget(25))) == ["fc_1", "fco_1"]


def test_unknown_window_never_truncates() -> None:
    context_ = entries(*(user(str(n)) for n in range(100)), current_from=99)
    assert fit(context_, budget(None, "disabled")) == context_


def test_compaction_replaces_what_came_before_except_people_s_messages() -> None:
    sealer = JsonSealer()
    counter = TokenCounter("o200k_base")
    item = compaction.new_item(sealer, "they talked", "m")
    rendered = render_compactions(
        entries(user("a"), assistant("b"), call("1"), output("1"), user("c"), item, user("d")),
        compaction.summary_reader(sealer, counter),
    )
    texts = [entry.body.get("id") or entry.body["content"][0]["text"] for entry in rendered]
    assert texts == [
        "msg_a",
        compaction.SUMMARY_HEADING + "they talked",
        "msg_c",
        "msg_d",
    ]
    summary = rendered[1]
    assert summary.tokens == counter.item(summary.body)


def test_compact_output_sent_back_puts_the_summary_after_the_user_messages() -> None:
    sealer = JsonSealer()
    item = compaction.new_item(sealer, "s", "m")
    rendered = render_compactions(
        entries(user("a"), user("b"), item, user("c")),
        compaction.summary_reader(sealer, TokenCounter("o200k_base")),
    )
    assert [entry.body.get("role") for entry in rendered] == ["user", "user", "assistant", "user"]


def test_a_tampered_compaction_item_is_a_400() -> None:
    item = {"id": "cmp_x", "type": "compaction", "encrypted_content": "not-a-sealed-blob"}
    with pytest.raises(InvalidRequest) as refused:
        render_compactions(
            entries(user("a"), item),
            compaction.summary_reader(JsonSealer(), TokenCounter("o200k_base")),
        )
    assert refused.value.code == "invalid_encrypted_content"


def test_build_window_uses_cached_counts_and_plans_compaction_past_the_threshold() -> None:
    counter = TokenCounter("o200k_base")
    past = History(
        bodies=[user("a"), assistant("b"), user("c"), assistant("d")], counts=[500, 500, None, 7]
    )
    tight = assembly.budget_for(
        counter, 10_000, 0, truncation="disabled", instructions=None, tools=None
    )
    window = assembly.build_window(counter, tight, past, [user("e")], sealer=JsonSealer())
    assert window.plan is None
    c_tokens = counter.item(user("c"))
    e_tokens = counter.item(user("e"))
    assert window.input_counts == [e_tokens]
    assert window.input_tokens == tight.fixed + 500 + 500 + c_tokens + 7 + e_tokens
    planned = assembly.build_window(
        counter, tight, past, [user("e")], sealer=JsonSealer(), compact_threshold=1000
    )
    assert planned.plan is not None
    assert [body["id"] for body in planned.plan.summarizer_context] == [
        "msg_a",
        "msg_b",
        "msg_c",
        "msg_d",
        "msg_e",
    ]
    item = compaction.new_item(JsonSealer(), "summary", "m")
    rebuilt = planned.plan.rebuild(Entry(item, 0))
    assert [entry.body.get("role") for entry in rebuilt] == ["user", "assistant", "user", "user"]
    assert rebuilt[-1].current


def test_a_kept_history_drops_counts_of_another_encoding() -> None:
    """A history kept in memory (a WebSocket connection's last response) names the encoding
    of its counts; a turn counting with another re-counts rather than trusting them."""
    kept = History([user("a"), user("b")], [5, 6], encoding="o200k_base")
    assert kept.counted_in("o200k_base") is kept
    assert kept.counted_in("cl100k_base").counts == [None, None]
    assert kept.counted_in("cl100k_base").bodies == kept.bodies
    stored = History([user("a")], [5])  # read from the store: in the encoding asked for
    assert stored.counted_in("cl100k_base") is stored


def test_histories_follow_one_another() -> None:
    past = History([user("a")], [1])
    joined = History(encoding="o200k_base").followed_by(past, History([user("b")], [None]))
    assert [body["id"] for body in joined.bodies] == ["msg_a", "msg_b"]
    assert joined.counts == [1, None]
    assert joined.encoding == "o200k_base"
    assert past.bodies == [user("a")]  # the parts are left as they were
