"""`text.format` end to end: the SDK's `responses.parse` / `stream` with a Pydantic model, and
`json_object`, forwarded as the upstream's `response_format`."""

from __future__ import annotations

import json
from enum import StrEnum

from openai import AsyncOpenAI
from pydantic import BaseModel

from tests.openapi import schema_errors
from tests.upstream import TestUpstream


class Sky(StrEnum):
    clear = "clear"
    cloudy = "cloudy"


class Reading(BaseModel):
    hour: int
    celsius: float


class Weather(BaseModel):
    city: str
    sky: Sky
    rain: bool
    readings: list[Reading]
    note: str | None


# What the test upstream writes for Weather's schema (tests/upstream.py: schema_instance).
EXPECTED = Weather(
    city="<city>", sky=Sky.clear, rain=True, readings=[Reading(hour=1, celsius=1.5)], note="<note>"
)


async def test_parse_with_a_pydantic_model(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    parsed = await client.responses.parse(
        model="test-model", input="weather in Paris", text_format=Weather
    )
    assert parsed.output_parsed == EXPECTED
    assert parsed.text.format is not None
    assert parsed.text.format.type == "json_schema"
    sent = upstream.last_request().body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Weather"
    assert sent["json_schema"]["strict"] is True
    schema = sent["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(Weather.model_fields)
    assert "Reading" in schema["$defs"]
    stored = await client.responses.retrieve(parsed.id)
    assert Weather.model_validate_json(stored.output_text) == EXPECTED
    assert stored.text.format is not None
    assert stored.text.format.model_dump()["name"] == "Weather"


async def test_stream_with_a_pydantic_model(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    async with client.responses.stream(
        model="test-model", input="weather in Oslo", text_format=Weather
    ) as stream:
        deltas = [
            event.delta async for event in stream if event.type == "response.output_text.delta"
        ]
        final = await stream.get_final_response()
    assert len(deltas) > 1
    assert final.output_parsed == EXPECTED
    assert upstream.last_request().body["response_format"]["json_schema"]["name"] == "Weather"


async def test_json_object(client: AsyncOpenAI, upstream: TestUpstream) -> None:
    raw = await client.responses.with_raw_response.create(
        model="test-model",
        input="answer in JSON",
        text={"format": {"type": "json_object"}},
    )
    document = raw.http_response.json()
    assert schema_errors("Response", document) == []
    assert document["text"]["format"] == {"type": "json_object"}
    assert upstream.last_request().body["response_format"] == {"type": "json_object"}
    text = document["output"][0]["content"][0]["text"]
    assert json.loads(text) == {"echo": "answer in JSON"}


async def test_plain_text_sends_no_response_format(
    client: AsyncOpenAI, upstream: TestUpstream
) -> None:
    response = await client.responses.create(
        model="test-model", input="hi", text={"format": {"type": "text"}}
    )
    assert response.output_text == "echo: hi"
    assert "response_format" not in upstream.last_request().body
