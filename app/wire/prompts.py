"""Prompt templates on the admin API (not an OpenAI route: OpenAI keeps templates in its UI)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class CreatePromptRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new prompt, or with `id` a new version of an existing one."""

    id: str | None = None
    instructions: str | None = None
    input: str | list[dict[str, Any]] | None = None


class PromptObject(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["prompt"] = "prompt"
    version: str
    instructions: str | None
    input: list[dict[str, Any]] | None
    created_at: int


class PromptList(msgspec.Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[PromptObject]


class PromptDeleted(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["prompt.deleted"] = "prompt.deleted"
    deleted: bool = True
