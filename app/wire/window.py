"""Bodies and answers of the two context-window routes: input token counts, and compaction."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.wire.content import MAX_TEXT
from app.wire.responses import ConversationRef, ResponseUsage
from app.wire.tools import ReasoningConfig, TextConfig, ToolChoice

InputValue = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | list[dict[str, Any]] | None


class InputTokensRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/responses/input_tokens`: a would-be create's context-shaping parameters."""

    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    input: InputValue = None
    previous_response_id: str | None = None
    conversation: str | ConversationRef | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    personality: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class InputTokens(msgspec.Struct, kw_only=True):
    object: Literal["response.input_tokens"] = "response.input_tokens"
    input_tokens: int


class CompactRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/responses/compact`: `model` is required (and may not be null here)."""

    model: Annotated[str, msgspec.Meta(max_length=200)] | msgspec.UnsetType | None = msgspec.UNSET
    input: InputValue = None
    previous_response_id: str | None = None
    instructions: str | None = None
    prompt_cache_key: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: dict[str, Any] | None = None
    service_tier: Literal["auto", "default", "fast", "flex", "priority"] | None = None
    image: dict[str, Any] | None = None


class CompactedResponse(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["response.compaction"] = "response.compaction"
    created_at: int
    output: list[dict[str, Any]]
    usage: ResponseUsage
