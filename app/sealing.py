"""Sealing: opaque, authenticated, encrypted blobs that only this deployment can open.

Compaction items carry their summary this way (`encrypted_content`), so a client can hold them
and hand them back (stateless use, `/responses/compact`'s output) without reading or altering
them. The blobs are Fernet tokens (AES-128-CBC + HMAC-SHA256, from `cryptography`), the same
format OpenAI's own encrypted content uses.

The key: `RAPPORT_SECRET_KEY` when set — any string, or several separated by commas to rotate
(the first seals, all open). Unset, a random key is made once and kept in the database
(`server_secrets`), so every process sharing the database agrees on it with no configuration;
whoever can read that table can already read every stored response.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import ServerSecret
from app.secrets import registry as secret_registry

SEALING_KEY_NAME = "sealing_key"


class SealBroken(Exception):
    """The blob was not sealed by this deployment's key, or was altered since."""


class Sealer:
    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ValueError("at least one secret is needed")
        keys = [_fernet_key(secret) for secret in secrets]
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        # The secrets and the keys made of them open every sealed blob: no answer, stored
        # item or log line may show them.
        secret_registry.register(*secrets, *(key.decode() for key in keys))

    def seal(self, payload: dict[str, Any]) -> str:
        return self._fernet.encrypt(msgspec.json.encode(payload)).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            payload = msgspec.json.decode(self._fernet.decrypt(token.encode()))
        except (InvalidToken, msgspec.DecodeError, ValueError):
            raise SealBroken("the sealed content could not be verified") from None
        if not isinstance(payload, dict):
            raise SealBroken("the sealed content is not an object")
        return payload


async def load_sealer(configured: str | None, sessions: async_sessionmaker[AsyncSession]) -> Sealer:
    """The configured keys, else the database's key (made by the first process to ask)."""
    if configured:
        return Sealer([part.strip() for part in configured.split(",") if part.strip()])
    return Sealer([await _database_secret(sessions)])


async def _database_secret(sessions: async_sessionmaker[AsyncSession]) -> str:
    """Insert-if-absent, then read: two processes starting at once end with the same key."""
    candidate = base64.urlsafe_b64encode(hashlib.sha256(Fernet.generate_key()).digest()).decode()
    async with sessions() as session, session.begin():
        existing = await session.scalar(
            sa.select(ServerSecret.value).where(ServerSecret.name == SEALING_KEY_NAME)
        )
        if existing is not None:
            return existing
        await session.execute(_insert_if_absent(session, candidate))
    async with sessions() as session:
        value = await session.scalar(
            sa.select(ServerSecret.value).where(ServerSecret.name == SEALING_KEY_NAME)
        )
    assert value is not None
    return value


def _insert_if_absent(session: AsyncSession, value: str) -> Any:
    values = {"name": SEALING_KEY_NAME, "value": value, "created_at": datetime.now(UTC)}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(ServerSecret).values(values).on_conflict_do_nothing(index_elements=["name"])


def _fernet_key(secret: str) -> bytes:
    """Any string becomes a Fernet key: 32 bytes of its sha256, urlsafe base64."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
