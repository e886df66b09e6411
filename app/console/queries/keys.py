"""Gateway keys of one project: is a session's key still live, list, revoke."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import ApiKey
from app.db.scoping import owned


async def is_live(session: AsyncSession, project_id: str, key_id: str) -> bool:
    """One primary-key read per console request: a revoked key signs its sessions out."""
    statement = owned(sa.select(ApiKey.id), ApiKey, project_id).where(
        ApiKey.id == key_id, ApiKey.revoked_at.is_(None)
    )
    return await session.scalar(statement) is not None


async def list_keys(session: AsyncSession, project_id: str) -> Sequence[ApiKey]:
    """A project has a handful of keys: all of them, newest first (the index is project_id)."""
    statement = owned(sa.select(ApiKey), ApiKey, project_id)
    rows = await session.scalars(statement.order_by(ApiKey.created_at.desc(), ApiKey.id.desc()))
    return rows.all()


async def names(session: AsyncSession, project_id: str) -> dict[str, str]:
    columns: sa.Select[Any] = sa.select(ApiKey.id, ApiKey.name)  # type: ignore[assignment]
    rows = await session.execute(owned(columns, ApiKey, project_id))
    return {key_id: name for key_id, name in rows}


async def revoke(session: AsyncSession, project_id: str, key_id: str) -> bool:
    """True when a live key of this project was revoked; another project's key is untouched."""
    statement = owned(sa.update(ApiKey), ApiKey, project_id).where(
        ApiKey.id == key_id, ApiKey.revoked_at.is_(None)
    )
    result = await session.execute(statement.values(revoked_at=utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def exists(session: AsyncSession, project_id: str, key_id: str) -> bool:
    statement = owned(sa.select(ApiKey.id), ApiKey, project_id).where(ApiKey.id == key_id)
    return await session.scalar(statement) is not None
