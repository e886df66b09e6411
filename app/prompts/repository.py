"""All SQL of prompt templates. Never commits; owner-scoped through `db/scoping.owned`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Prompt
from app.db.scoping import owned


async def latest_version(session: AsyncSession, project_id: str, prompt_id: str) -> int | None:
    """The newest version number of a live prompt (None: no such prompt for this project)."""
    statement = owned(sa.select(sa.func.max(Prompt.version)), Prompt, project_id)
    version: int | None = await session.scalar(statement.where(Prompt.id == prompt_id))
    return version


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(Prompt).values(values))


async def get(
    session: AsyncSession, project_id: str, prompt_id: str, version: int | None
) -> Prompt | None:
    """One version, or the newest when `version` is None."""
    statement = owned(sa.select(Prompt), Prompt, project_id).where(Prompt.id == prompt_id)
    if version is None:
        statement = statement.order_by(Prompt.version.desc()).limit(1)
    else:
        statement = statement.where(Prompt.version == version)
    row: Prompt | None = await session.scalar(statement)
    return row


async def list_latest(session: AsyncSession, project_id: str) -> list[Prompt]:
    versions: Any = sa.select(Prompt.id, sa.func.max(Prompt.version).label("v"))
    newest = owned(versions, Prompt, project_id).group_by(Prompt.id).subquery()
    rows = await session.scalars(
        sa.select(Prompt)
        .join(newest, sa.and_(Prompt.id == newest.c.id, Prompt.version == newest.c.v))
        .order_by(Prompt.id)
    )
    return list(rows)


async def soft_delete(session: AsyncSession, project_id: str, prompt_id: str, at: datetime) -> bool:
    result = await session.execute(
        owned(sa.update(Prompt), Prompt, project_id)
        .where(Prompt.id == prompt_id)
        .values(deleted_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
