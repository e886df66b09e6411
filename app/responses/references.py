"""`item_reference` input items: an item already stored, named by id instead of sent again.

A reference resolves to a copy of the stored item under a fresh id, exactly as if the client
had replayed the item itself (app/wire/items.py, `stored_body`: an item is stored once, under
an id of ours). Only the caller's own items resolve, and only while the response or
conversation holding them is not deleted; anything else is OpenAI's 404 for a missing item.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.responses import repository
from app.wire.items import new_item_id

REFERENCE = "item_reference"


async def resolve(
    session: AsyncSession, project_id: str, bodies: list[dict[str, Any]], param: str = "input"
) -> list[dict[str, Any]]:
    """`bodies` with every reference replaced by a copy of the item it names."""
    wanted = [body["id"] for body in bodies if body["type"] == REFERENCE]
    if not wanted:
        return bodies
    found = await repository.referenced_bodies(session, project_id, wanted)
    resolved: list[dict[str, Any]] = []
    for body in bodies:
        if body["type"] != REFERENCE:
            resolved.append(body)
            continue
        stored = found.get(body["id"])
        if stored is None:
            raise NotFound(f"Item with id '{body['id']}' not found.", param=param)
        copy = {**stored, "id": new_item_id(stored["type"], like=stored["id"])}
        if "status" in copy:
            copy["status"] = "completed"
        resolved.append(copy)
    return resolved
