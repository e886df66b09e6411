"""Content parts of messages, tagged on `type` as OpenAI's schema has them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

MAX_TEXT = 10_485_760


class InputText(msgspec.Struct, tag="input_text", tag_field="type"):
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
    prompt_cache_breakpoint: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class InputImage(msgspec.Struct, tag="input_image", tag_field="type"):
    """Stored and listed with `detail`, `image_url` and `file_id` always present, as OpenAI's."""

    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] = "auto"
    prompt_cache_breakpoint: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        if self.image_url is None and self.file_id is None:
            raise ValueError("an input_image needs `image_url` or `file_id`")


class InputFile(msgspec.Struct, tag="input_file", tag_field="type"):
    """Only the fields a client sent are kept: an input_file is one of several alternatives."""

    file_id: str | msgspec.UnsetType = msgspec.UNSET
    filename: str | msgspec.UnsetType = msgspec.UNSET
    file_data: Annotated[str, msgspec.Meta(max_length=73_400_320)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    file_url: str | msgspec.UnsetType = msgspec.UNSET
    detail: Literal["low", "high", "auto"] | msgspec.UnsetType = msgspec.UNSET
    prompt_cache_breakpoint: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        sources = (self.file_id, self.file_data, self.file_url)
        if all(source is msgspec.UNSET for source in sources):
            raise ValueError("an input_file needs `file_id`, `file_data` or `file_url`")


class OutputText(msgspec.Struct, tag="output_text", tag_field="type"):
    """Assistant text. The wire always carries `annotations` and `logprobs`, even when empty."""

    text: str
    annotations: list[dict[str, Any]] = msgspec.field(default_factory=list)
    logprobs: list[dict[str, Any]] = msgspec.field(default_factory=list)


class Refusal(msgspec.Struct, tag="refusal", tag_field="type"):
    refusal: str


class SummaryText(msgspec.Struct, tag="summary_text", tag_field="type"):
    text: str


class ReasoningText(msgspec.Struct, tag="reasoning_text", tag_field="type"):
    text: str


InputContent = InputText | InputImage | InputFile
MessageContent = InputText | InputImage | InputFile | OutputText | Refusal
