"""Pure translation of streamed chat-completion chunks into provider deltas.

A chunk carries at most one choice here (Rapport never asks for `n > 1`); its `delta` may hold
reasoning text (`reasoning_content` from vLLM/DeepSeek, `reasoning` from others), content, a
refusal and tool-call pieces, in that order of appearance in the answer.
"""

from __future__ import annotations

from typing import Any

from app.providers import logprobs
from app.providers.base import (
    Delta,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    UpstreamProtocolError,
)


def deltas(chunk: Any, *, with_logprobs: bool = False) -> tuple[list[Delta], str | None]:
    """The deltas of one chunk and its finish_reason (None until the last content chunk);
    text deltas carry the chunk's token logprobs when `with_logprobs`."""
    if not isinstance(chunk, dict):
        raise UpstreamProtocolError("a streamed chunk was not a JSON object")
    if isinstance(chunk.get("error"), dict | str):
        raise UpstreamProtocolError("the upstream reported an error mid-stream")
    choices = chunk.get("choices") or []
    if not choices:
        return [], None
    choice = choices[0]
    delta = choice.get("delta") or {}
    found: list[Delta] = []
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        found.append(ReasoningDelta(reasoning))
    if isinstance(delta.get("content"), str) and delta["content"]:
        tokens = tuple(logprobs.from_choice(choice)) if with_logprobs else ()
        found.append(TextDelta(delta["content"], tokens))
    if isinstance(delta.get("refusal"), str) and delta["refusal"]:
        found.append(RefusalDelta(delta["refusal"]))
    for call in delta.get("tool_calls") or []:
        function = call.get("function") or {}
        found.append(
            ToolCallDelta(
                index=int(call.get("index") or 0),
                call_id=call.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        )
    return found, choice.get("finish_reason")
