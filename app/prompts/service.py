"""Prompt template use cases: versions, reads, deletion, and rendering into a create request.

Versions are immutable and numbered per prompt id ("1", "2", …); a create that names no
version gets the newest. The request's own `instructions` win over the template's (the caller
asked for them explicitly); the template's input items come before the request's input.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import ids
from app.auth import Caller
from app.db.base import utcnow
from app.db.models import Prompt
from app.db.session import unit_of_work
from app.errors import InvalidRequest, NotFound
from app.prompts import render, repository
from app.responses.validation import parse_input
from app.wire.prompts import CreatePromptRequest, PromptDeleted, PromptList, PromptObject
from app.wire.responses import CreateResponseRequest


class PromptService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, project_id: str, body: CreatePromptRequest) -> PromptObject:
        items = _template_input(body.input)
        if body.id is not None and not ids.is_well_formed(body.id):
            ids.expect(body.id, "", "id")  # a NUL byte must not reach the database
        async with unit_of_work(self._sessions) as session:
            prompt_id = body.id or ids.new_id(ids.PROMPT)
            latest = await repository.latest_version(session, project_id, prompt_id)
            if body.id is not None and latest is None:
                raise prompt_not_found(body.id, "id")
            values = {
                "id": prompt_id,
                "version": (latest or 0) + 1,
                "project_id": project_id,
                "instructions": body.instructions,
                "input": items,
                "created_at": utcnow(),
            }
            await repository.insert(session, values)
        return _to_wire(Prompt(**values))

    async def retrieve(
        self, project_id: str, prompt_id: str, version: int | None = None
    ) -> PromptObject:
        async with unit_of_work(self._sessions) as session:
            row = await repository.get(session, project_id, prompt_id, version)
        if row is None:
            raise prompt_not_found(prompt_id, None)
        return _to_wire(row)

    async def list(self, project_id: str) -> PromptList:
        async with unit_of_work(self._sessions) as session:
            rows = await repository.list_latest(session, project_id)
        return PromptList(data=[_to_wire(row) for row in rows])

    async def delete(self, project_id: str, prompt_id: str) -> PromptDeleted:
        async with unit_of_work(self._sessions) as session:
            deleted = await repository.soft_delete(session, project_id, prompt_id, utcnow())
        if not deleted:
            raise prompt_not_found(prompt_id, None)
        return PromptDeleted(id=prompt_id)

    async def apply(self, caller: Caller, request: CreateResponseRequest) -> CreateResponseRequest:
        """The request with its `prompt` rendered into instructions and input (once, at create
        time: a background response stores what was rendered)."""
        ref = request.prompt
        if ref is None:
            return request
        version = _version(ref.version)
        if not ids.is_well_formed(ref.id):
            ids.expect(ref.id, "", "prompt.id")  # a NUL byte must not reach the database
        async with unit_of_work(self._sessions) as session:
            row = await repository.get(session, caller.project_id, ref.id, version)
        if row is None:
            raise InvalidRequest(
                f"Prompt with id '{ref.id}'"
                + (f" and version '{ref.version}'" if ref.version else "")
                + " not found.",
                param="prompt",
                code="invalid_value",
            )
        instructions, items = render.render(row.instructions, row.input, ref.variables)
        own = request.input
        own_items = [{"role": "user", "content": own}] if isinstance(own, str) else own or []
        return msgspec.structs.replace(
            request,
            instructions=request.instructions if request.instructions is not None else instructions,
            input=[*items, *own_items],
        )


def prompt_not_found(prompt_id: str, param: str | None) -> NotFound:
    return NotFound(f"Prompt with id '{prompt_id}' not found.", param=param)


def _version(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidRequest(
            f"Invalid prompt version '{raw}': versions are numbers.",
            param="prompt.version",
            code="invalid_value",
        )
    return int(raw)


def _template_input(raw: str | list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Checked as a create's input would be, kept as sent (placeholders and all)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    parse_input(raw)
    return raw


def _to_wire(row: Prompt) -> PromptObject:
    return PromptObject(
        id=row.id,
        version=str(row.version),
        instructions=row.instructions,
        input=row.input,
        created_at=int(row.created_at.timestamp()),
    )
