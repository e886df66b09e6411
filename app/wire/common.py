"""Types shared by several resources: metadata, list envelopes, deleted markers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

MetadataKey = Annotated[str, msgspec.Meta(max_length=64)]
MetadataValue = Annotated[str, msgspec.Meta(max_length=512)]
# OpenAI: at most 16 pairs, keys up to 64 characters, values up to 512 characters, strings only.
Metadata = Annotated[dict[MetadataKey, MetadataValue], msgspec.Meta(max_length=16)]

ListLimit = Annotated[int, msgspec.Meta(ge=1, le=100)]

# Shared by input items and tools (app/wire/items.py, tool_items.py, tools.py).
CallId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ToolName = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ItemStatus = Literal["in_progress", "completed", "incomplete"]
Order = Literal["asc", "desc"]

IncludeValue = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]

INCLUDE_VALUES: frozenset[str] = frozenset(IncludeValue.__args__)  # type: ignore[attr-defined]


class ObjectList(msgspec.Struct):
    """OpenAI's cursor list: `first_id`/`last_id` are null on an empty page."""

    data: list[Any]
    first_id: str | None
    last_id: str | None
    has_more: bool
    object: Literal["list"] = "list"


class DeletedObject(msgspec.Struct):
    id: str
    object: str
    deleted: bool = True
