"""`top_logprobs` + `include: ["message.output_text.logprobs"]`, through the upstream and back."""

from __future__ import annotations

from typing import Any

from openai import AsyncOpenAI

from tests.e2e.test_streaming import check_stream
from tests.openapi import schema_errors
from tests.upstream import TestUpstream, token_logprobs

INCLUDE: Any = ["message.output_text.logprobs"]
ANSWER_TOKENS = ["echo: ", "how ", "sure"]  # the test upstream's words for input "how sure"


def expected(top: int) -> list[dict[str, Any]]:
    return [token_logprobs(token, i, top) for i, token in enumerate(ANSWER_TOKENS)]


def slim(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The event shape: no `bytes`, here or in the alternatives."""
    return [
        {
            "token": e["token"],
            "logprob": e["logprob"],
            "top_logprobs": [
                {"token": t["token"], "logprob": t["logprob"]} for t in e["top_logprobs"]
            ],
        }
        for e in entries
    ]


async def test_logprobs_come_back_on_the_text_part_and_are_stored(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    raw = await client.responses.with_raw_response.create(
        model="test-model", input="how sure", include=INCLUDE, top_logprobs=3
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    assert document["top_logprobs"] == 3
    sent = upstream.last_request().body
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 3)
    part = document["output"][0]["content"][0]
    assert part["text"] == "echo: how sure"
    assert part["logprobs"] == expected(3)
    assert [alt["token"] for alt in part["logprobs"][1]["top_logprobs"]] == [
        "how ",
        "how#1",
        "how#2",
    ]
    typed = await client.responses.retrieve(document["id"])
    stored = typed.output[0].content[0]
    assert stored.type == "output_text"
    assert stored.logprobs is not None
    assert [entry.model_dump() for entry in stored.logprobs] == expected(3)


async def test_include_without_top_logprobs_gives_the_chosen_tokens_only(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    response = await client.responses.create(model="test-model", input="how sure", include=INCLUDE)
    sent = upstream.last_request().body
    assert sent["logprobs"] is True
    assert "top_logprobs" not in sent
    logprobs = response.output[0].content[0].logprobs  # type: ignore[union-attr]
    assert logprobs is not None
    assert [(e.token, e.logprob, e.top_logprobs) for e in logprobs] == [
        ("echo: ", -0.1, []),
        ("how ", -0.2, []),
        ("sure", -0.3, []),
    ]


async def test_nothing_is_asked_of_the_upstream_without_the_include(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    raw = await client.responses.with_raw_response.create(
        model="test-model", input="how sure", top_logprobs=5
    )
    document = raw.http_response.json()
    assert document["top_logprobs"] == 5  # echoed as sent, as OpenAI does
    assert document["output"][0]["content"][0]["logprobs"] == []
    sent = upstream.last_request().body
    assert "logprobs" not in sent
    assert "top_logprobs" not in sent


async def test_streamed_deltas_and_done_events_carry_the_logprobs(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    raw = await client.responses.with_raw_response.create(
        model="test-model", input="how sure", include=INCLUDE, top_logprobs=2, stream=True
    )
    events = [event.model_dump(exclude_unset=True) async for event in raw.parse()]
    response = check_stream(events)
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert [d["delta"] for d in deltas] == ANSWER_TOKENS
    assert [d["logprobs"] for d in deltas] == [slim([entry]) for entry in expected(2)]
    (done,) = [e for e in events if e["type"] == "response.output_text.done"]
    assert done["logprobs"] == slim(expected(2))
    (part_done,) = [e for e in events if e["type"] == "response.content_part.done"]
    assert part_done["part"]["logprobs"] == expected(2)
    (added,) = [e for e in events if e["type"] == "response.content_part.added"]
    assert added["part"]["logprobs"] == []  # the part as it was when it opened
    assert response["output"][0]["content"][0]["logprobs"] == expected(2)
    assert upstream.last_request().body["top_logprobs"] == 2
    stored = await client.responses.retrieve(response["id"])
    assert [e.model_dump() for e in stored.output[0].content[0].logprobs or []] == expected(2)  # type: ignore[union-attr]


async def test_a_streamed_answer_without_the_include_has_empty_logprobs(
    client: AsyncOpenAI,
) -> None:
    stream = await client.responses.create(model="test-model", input="how sure", stream=True)
    events = [event.model_dump(exclude_unset=True) async for event in stream]
    check_stream(events)
    texts = [e for e in events if e["type"].startswith("response.output_text.")]
    assert texts
    assert all(e["logprobs"] == [] for e in texts)
