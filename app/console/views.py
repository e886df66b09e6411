"""The values pages show, made from query rows: one place turns a row into what a page reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from app.console.items import ItemView


class ResponseSummary(msgspec.Struct, frozen=True):
    id: str
    status: str
    model: str
    background: bool
    created_at: datetime
    completed_at: datetime | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    conversation_id: str | None
    previous_response_id: str | None
    key_id: str | None
    deleted: bool = False

    @property
    def active(self) -> bool:
        return self.status in ("queued", "in_progress")

    @property
    def duration_seconds(self) -> float | None:
        if self.completed_at is None:
            return None
        return max((self.completed_at - self.created_at).total_seconds(), 0.0)


def summary(row: sa.Row[Any] | Any) -> ResponseSummary:
    """From a list row (`queries.responses.LIST_COLUMNS`) or a whole `ResponseRow`."""
    usage = row.usage or {}
    return ResponseSummary(
        id=row.id,
        status=row.status,
        model=row.model,
        background=row.background,
        created_at=row.created_at,
        completed_at=row.completed_at,
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        total_tokens=usage.get("total_tokens"),
        conversation_id=row.conversation_id,
        previous_response_id=row.previous_response_id,
        key_id=row.key_id,
        deleted=getattr(row, "deleted_at", None) is not None,
    )


class ResponsesPage(msgspec.Struct):
    rows: list[ResponseSummary]
    newer: str | None  # cursor for the page of newer responses (`before`), if any
    older: str | None  # cursor for the page of older ones (`after`), if any
    models: list[str]
    problems: list[str]


class Chain(msgspec.Struct):
    ancestors: list[ResponseSummary]  # oldest first, ending with the parent
    truncated: bool  # more ancestors exist past what is shown
    # Other responses continuing each shown response (its branches), by that response's id.
    continuations: dict[str, list[ResponseSummary]]


class ItemsPage(msgspec.Struct):
    items: list[ItemView]
    next_position: int | None  # where the next page starts, when there is one


class ResponseDetail(msgspec.Struct):
    response: ResponseSummary
    params: dict[str, Any]
    instructions: str | None
    metadata: dict[str, Any]
    usage: dict[str, Any] | None
    error: dict[str, Any] | None
    incomplete_details: dict[str, Any] | None
    chain: Chain
    input: ItemsPage
    output: ItemsPage
    raw_json: str
    key_name: str | None


class ConversationSummary(msgspec.Struct, frozen=True):
    id: str
    created_at: datetime
    metadata: dict[str, Any]
    item_count: int
    active_response_id: str | None


def conversation(row: sa.Row[Any]) -> ConversationSummary:
    return ConversationSummary(
        id=row.id,
        created_at=row.created_at,
        metadata=row.metadata_ or {},
        item_count=int(row.next_seq or 0),
        active_response_id=row.active_response_id,
    )


class ConversationItemView(msgspec.Struct):
    seq: int
    response_id: str | None
    item: ItemView


class ConversationDetail(msgspec.Struct):
    conversation: ConversationSummary
    items: list[ConversationItemView]
    next_seq: int | None
    responses: list[ResponseSummary]


class KeyView(msgspec.Struct, frozen=True):
    id: str
    name: str
    display: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
