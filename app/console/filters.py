"""What a person asks the responses list for, read from the query string and checked.

Kept free of HTTP types so the same parse serves the page, its htmx partial and the tests. A
value that cannot be used is dropped with a message for the page, never a 500 or a 400 page:
a filter form is typed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec

from app import ids

STATUSES = ("queued", "in_progress", "completed", "incomplete", "failed", "cancelled")


class ResponseFilters(msgspec.Struct, frozen=True):
    status: str | None = None
    model: str | None = None
    conversation_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    metadata: tuple[str, str] | None = None
    response_id: str | None = None  # a search by id: the page goes straight to it

    @property
    def active(self) -> bool:
        return any(
            value is not None
            for value in (
                self.status,
                self.model,
                self.conversation_id,
                self.created_from,
                self.created_to,
                self.metadata,
            )
        )


class Parsed(msgspec.Struct, frozen=True):
    filters: ResponseFilters
    problems: tuple[str, ...] = ()


def parse(query: Mapping[str, str]) -> Parsed:
    problems: list[str] = []
    status = _text(query, "status")
    if status is not None and status not in STATUSES:
        problems.append(f"Unknown status '{status}'.")
        status = None
    conversation = _text(query, "conversation")
    if conversation is not None and not ids.is_well_formed(conversation):
        problems.append("A conversation id has letters, digits, '_' and '-' only.")
        conversation = None
    metadata, response_id = None, None
    search = _text(query, "q")
    if search is not None:
        key, equals, value = search.partition("=")
        if equals and key.strip():
            metadata = (key.strip(), value.strip())
        elif ids.is_well_formed(search):
            response_id = search
        else:
            problems.append("Search takes a response id, or key=value to match metadata.")
    return Parsed(
        ResponseFilters(
            status=status,
            model=_text(query, "model"),
            conversation_id=conversation,
            created_from=_moment(query, "from", problems),
            created_to=_moment(query, "to", problems),
            metadata=metadata,
            response_id=response_id,
        ),
        tuple(problems),
    )


def _text(query: Mapping[str, str], name: str) -> str | None:
    value = (query.get(name) or "").strip()
    return value[:200] or None


def _moment(query: Mapping[str, str], name: str, problems: list[str]) -> datetime | None:
    """`datetime-local` inputs send `YYYY-MM-DDTHH:MM`: read as UTC, as the pages show time."""
    raw = _text(query, name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        problems.append(f"'{raw}' is not a date and time (YYYY-MM-DDTHH:MM, UTC).")
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
