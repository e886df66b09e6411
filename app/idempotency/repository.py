"""All SQL on `idempotency_keys`. Writes are fenced by the claim's `created_at`: a row another
request took over (expired, or abandoned in flight) is never finished or released by the old
owner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IdempotencyKey

KEYS: sa.Table = IdempotencyKey.__table__  # type: ignore[assignment]


def _owned(project_id: str, route: str, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(KEYS.c.project_id == project_id, KEYS.c.route == route, KEYS.c.key == key)


async def claim(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert the key's row unless one exists; True when this request now owns the key."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await session.execute(insert(KEYS).values(values).on_conflict_do_nothing())
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get(
    session: AsyncSession, project_id: str, route: str, key: str
) -> IdempotencyKey | None:
    statement = sa.select(IdempotencyKey).where(
        IdempotencyKey.project_id == project_id,
        IdempotencyKey.route == route,
        IdempotencyKey.key == key,
    )
    return await session.scalar(statement)


async def take_over(
    session: AsyncSession,
    values: dict[str, Any],
    *,
    expired_before: datetime,
    abandoned_before: datetime,
) -> bool:
    """Claim a row that expired, or whose first request never finished (its process died):
    True when this request now owns it."""
    stale = sa.or_(
        KEYS.c.created_at < expired_before,
        sa.and_(KEYS.c.status_code.is_(None), KEYS.c.created_at < abandoned_before),
    )
    fresh = {
        "fingerprint": values["fingerprint"],
        "created_at": values["created_at"],
        "status_code": None,
        "media_type": None,
        "body": None,
        "headers": None,
        "completed_at": None,
    }
    result = await session.execute(
        sa.update(KEYS)
        .where(_owned(values["project_id"], values["route"], values["key"]), stale)
        .values(fresh)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish(
    session: AsyncSession,
    project_id: str,
    route: str,
    key: str,
    claimed_at: datetime,
    answer: dict[str, Any],
) -> None:
    await session.execute(
        sa.update(KEYS)
        .where(_owned(project_id, route, key), KEYS.c.created_at == claimed_at)
        .values(answer)
    )


async def release(
    session: AsyncSession, project_id: str, route: str, key: str, claimed_at: datetime
) -> None:
    await session.execute(
        sa.delete(KEYS).where(
            _owned(project_id, route, key),
            KEYS.c.created_at == claimed_at,
            KEYS.c.status_code.is_(None),
        )
    )


async def purge_expired(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(sa.delete(KEYS).where(KEYS.c.created_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
