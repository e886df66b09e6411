"""The Response object and the body of `POST /v1/responses`, field for field as OpenAI's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.wire.common import IncludeValue, Metadata
from app.wire.content import MAX_TEXT
from app.wire.tools import ReasoningConfig, TextConfig, ToolChoice

Temperature = Annotated[float, msgspec.Meta(ge=0, le=2)]
TopP = Annotated[float, msgspec.Meta(ge=0, le=1)]
TopLogprobs = Annotated[int, msgspec.Meta(ge=0, le=20)]
Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]
MaxOutputTokens = Annotated[int, msgspec.Meta(ge=16)]
ServiceTier = Literal["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"]
ResponseStatus = Literal["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]
TERMINAL_STATUSES = frozenset({"completed", "incomplete", "failed", "cancelled"})


class ConversationRef(msgspec.Struct):
    id: str


class StreamOptions(msgspec.Struct, forbid_unknown_fields=True):
    include_obfuscation: bool | None = None


class CompactionSetting(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["compaction"]
    compact_threshold: Annotated[int, msgspec.Meta(ge=1000)] | None = None


class PromptRef(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    version: str | None = None
    variables: dict[str, Any] | None = None


class CreateResponseRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every body parameter of OpenAI's create call; unknown keys are a 400 as at OpenAI."""

    model: Annotated[str, msgspec.Meta(max_length=200)] | msgspec.UnsetType = msgspec.UNSET
    input: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationRef | None = None
    store: bool | None = True
    background: bool | None = False
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    metadata: Metadata | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_logprobs: TopLogprobs | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    max_output_tokens: MaxOutputTokens | None = None
    max_tool_calls: Annotated[int, msgspec.Meta(ge=0)] | None = None
    parallel_tool_calls: bool | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[IncludeValue] | None = None
    user: str | None = None
    safety_identifier: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    prompt_cache_key: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: dict[str, Any] | None = None
    service_tier: ServiceTier | None = None
    context_management: list[CompactionSetting] | None = None
    prompt: PromptRef | None = None
    moderation: dict[str, Any] | None = None
    background_options: dict[str, Any] | None = None
    access_programs: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    # Codex CLI's own request tags (session, turn, …): kept with the response, never sent
    # upstream and not echoed (OpenAI's Response has no such field).
    client_metadata: dict[str, Any] | None = None


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: InputTokensDetails = msgspec.field(default_factory=InputTokensDetails)
    output_tokens_details: OutputTokensDetails = msgspec.field(default_factory=OutputTokensDetails)


class ResponseError(msgspec.Struct):
    code: str
    message: str


class IncompleteDetails(msgspec.Struct):
    reason: Literal["max_output_tokens", "content_filter"]


class Response(msgspec.Struct, kw_only=True):
    """OpenAI's Response in the key order real traffic shows.

    Nullable fields stay on the wire as null; only `conversation` is left out when there is none,
    as OpenAI does. `frequency_penalty`/`presence_penalty` are in no schema but on OpenAI's wire
    (0.0 when unset). `output_text` is an SDK convenience and is never sent.
    """

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    background: bool
    completed_at: int | None
    conversation: ConversationRef | msgspec.UnsetType = msgspec.UNSET
    error: ResponseError | None
    frequency_penalty: float = 0.0
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    model: str
    output: list[dict[str, Any]]
    parallel_tool_calls: bool
    presence_penalty: float = 0.0
    previous_response_id: str | None
    prompt: dict[str, Any] | None = None
    prompt_cache_key: str | None
    prompt_cache_retention: str | None
    reasoning: dict[str, Any]
    safety_identifier: str | None
    service_tier: str
    store: bool
    temperature: float
    text: dict[str, Any]
    tool_choice: Any
    tools: list[dict[str, Any]]
    top_logprobs: int
    top_p: float
    truncation: str
    usage: ResponseUsage | None
    user: str | None
    metadata: dict[str, str]
