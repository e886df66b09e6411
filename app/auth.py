"""Gateway keys: minting, hashing, listing, revoking, and resolving a bearer key to its caller.

Only the sha256 of a secret is stored, so a database dump leaks no usable key. A resolved key is
cached for a few seconds per process: authentication then costs no round trip on the hot path,
and a revocation takes effect everywhere within `CACHE_SECONDS`.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import ids
from app.db.base import utcnow
from app.db.models import ApiKey
from app.db.session import unit_of_work
from app.errors import Unauthorized

KEY_PREFIX = "sk-gateway-"
CACHE_SECONDS = 5.0
LAST_USED_EVERY_SECONDS = 60.0


class Caller(msgspec.Struct, frozen=True):
    """Who is calling: every repository read and write is scoped by `project_id`."""

    project_id: str
    key_id: str


class KeyInfo(msgspec.Struct):
    id: str
    project_id: str
    name: str
    display: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mask(secret: str) -> str:
    """How OpenAI quotes a key back: enough to recognise it, never enough to use it."""
    if len(secret) <= 10:
        return "*" * len(secret)
    return f"{secret[:6]}{'*' * 5}{secret[-4:]}"


class Authenticator:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._cache: dict[str, tuple[Caller, float]] = {}
        self._last_used_written: dict[str, float] = {}

    async def authenticate(self, authorization: str | None) -> Caller:
        secret = _bearer(authorization)
        digest = hash_secret(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            return cached[0]
        async with unit_of_work(self._sessions) as session:
            row = (
                await session.execute(
                    sa.select(ApiKey.id, ApiKey.project_id).where(
                        ApiKey.secret_sha256 == digest, ApiKey.revoked_at.is_(None)
                    )
                )
            ).first()
            if row is None:
                self._cache.pop(digest, None)
                raise Unauthorized(
                    f"Incorrect API key provided: {mask(secret)}. Secrets are shown once, "
                    "when minted: mint a gateway key with `rapport keys create --name NAME` "
                    "(it joins the default project, which keeps earlier responses visible).",
                    code="invalid_api_key",
                )
            if now - self._last_used_written.get(row.id, -LAST_USED_EVERY_SECONDS) >= (
                LAST_USED_EVERY_SECONDS
            ):
                await session.execute(
                    sa.update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=utcnow())
                )
                self._last_used_written[row.id] = now
        caller = Caller(project_id=row.project_id, key_id=row.id)
        self._cache[digest] = (caller, now)
        return caller


def _bearer(authorization: str | None) -> str:
    scheme, _, secret = (authorization or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Unauthorized(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    return secret


async def create_key(
    sessions: async_sessionmaker[AsyncSession], name: str, project_id: str | None = None
) -> tuple[KeyInfo, str]:
    """A new key in `project_id` (a new project when None); the secret is returned once."""
    secret = ids.new_secret(KEY_PREFIX)
    row = ApiKey(
        id=ids.new_id(ids.API_KEY),
        project_id=project_id or ids.new_id(ids.PROJECT),
        name=name,
        display_prefix=f"{secret[: len(KEY_PREFIX) + 4]}…{secret[-4:]}",
        secret_sha256=hash_secret(secret),
        created_at=utcnow(),
    )
    async with unit_of_work(sessions) as session:
        session.add(row)
    return _info(row), secret


async def default_project_id(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    """The project of the first key ever minted, revoked or not: `keys create` puts new keys
    there unless told otherwise, so re-running the quick start keeps the earlier responses."""
    async with unit_of_work(sessions) as session:
        project_id: str | None = await session.scalar(
            sa.select(ApiKey.project_id).order_by(ApiKey.created_at, ApiKey.id).limit(1)
        )
    return project_id


async def list_keys(sessions: async_sessionmaker[AsyncSession]) -> list[KeyInfo]:
    async with unit_of_work(sessions) as session:
        rows = (await session.scalars(sa.select(ApiKey).order_by(ApiKey.created_at))).all()
    return [_info(row) for row in rows]


async def revoke_key(sessions: async_sessionmaker[AsyncSession], key_id: str) -> bool:
    """True when a live key was revoked; revoking twice is a no-op that returns False."""
    async with unit_of_work(sessions) as session:
        result = await session.execute(
            sa.update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        display=row.display_prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
