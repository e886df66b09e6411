"""Sealing: round trips, refuses tampering and foreign keys, rotates, and shares its DB key."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.sealing import SealBroken, Sealer, load_sealer


def test_round_trip_is_opaque() -> None:
    sealer = Sealer(["one secret"])
    token = sealer.seal({"summary": "they agreed on blue"})
    assert token.startswith("gAAAA")  # a Fernet token, as OpenAI's encrypted content
    assert "blue" not in token
    assert sealer.open(token) == {"summary": "they agreed on blue"}


def test_tampered_and_foreign_blobs_are_refused() -> None:
    sealer = Sealer(["one secret"])
    token = sealer.seal({"summary": "x"})
    with pytest.raises(SealBroken):
        sealer.open(token[:-6] + "AAAAAA")
    with pytest.raises(SealBroken):
        Sealer(["another secret"]).open(token)
    with pytest.raises(SealBroken):
        sealer.open("not a token at all")


def test_rotation_opens_old_blobs_and_seals_with_the_first_key() -> None:
    old = Sealer(["old"]).seal({"v": 1})
    rotated = Sealer(["new", "old"])
    assert rotated.open(old) == {"v": 1}
    assert Sealer(["new"]).open(rotated.seal({"v": 2})) == {"v": 2}


async def test_configured_keys_win_and_the_database_key_is_shared(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    configured = await load_sealer("new, old", sessions)
    assert configured.open(Sealer(["old"]).seal({"v": 1})) == {"v": 1}
    # Two processes starting at once agree on one key kept in the database.
    first, second = await asyncio.gather(load_sealer(None, sessions), load_sealer(None, sessions))
    assert second.open(first.seal({"v": 3})) == {"v": 3}
    later = await load_sealer(None, sessions)
    assert later.open(first.seal({"v": 4})) == {"v": 4}
