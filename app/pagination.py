"""Cursor pagination as OpenAI does it: `limit`, `order`, `after`/`before` item ids, `has_more`.

Pages are keyset reads: the repository asks for `limit + 1` rows past the cursor, and the extra
row only says whether there is more. No OFFSET, so page 500 costs what page 1 costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from app import ids
from app.errors import InvalidRequest, invalid_value
from app.wire.common import ObjectList

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageRequest(msgspec.Struct, frozen=True):
    limit: int = DEFAULT_LIMIT
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


def page_request(
    limit: str | None, order: str | None, after: str | None, before: str | None
) -> PageRequest:
    """Validate raw query values, naming the offending parameter as OpenAI does."""
    size = DEFAULT_LIMIT
    if limit is not None:
        try:
            size = int(limit)
        except ValueError:
            raise InvalidRequest(
                f"Invalid type for 'limit': expected an integer, but got '{limit}' instead.",
                param="limit",
                code="invalid_type",
            ) from None
        if not 1 <= size <= MAX_LIMIT:
            raise InvalidRequest(
                f"Invalid 'limit': expected a value between 1 and {MAX_LIMIT}, got {size}.",
                param="limit",
                code="integer_above_max_value" if size > MAX_LIMIT else "integer_below_min_value",
            )
    if order is not None and order not in ("asc", "desc"):
        raise invalid_value("order", order, ["asc", "desc"])
    for name, cursor in (("after", after), ("before", before)):
        if cursor and not ids.is_well_formed(cursor):
            ids.expect(cursor, "", name)
    return PageRequest(size, order or "desc", after or None, before or None)  # type: ignore[arg-type]


def object_list(rows: Sequence[dict[str, Any]], limit: int) -> ObjectList:
    """The list envelope from `limit + 1` fetched rows."""
    page = list(rows[:limit])
    return ObjectList(
        data=page,
        first_id=page[0]["id"] if page else None,
        last_id=page[-1]["id"] if page else None,
        has_more=len(rows) > limit,
    )
