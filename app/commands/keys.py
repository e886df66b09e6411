"""`rapport keys create|list|revoke`.

`create` prints the secret as the last line of stdout (scripts take it with `tail -n 1`). With
neither `--project` nor `--new-project` it joins the default project — the first key's — so
running the quick start a second time mints a key that still sees the first run's responses.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import KeyInfo, create_key, default_project_id, list_keys, revoke_key
from app.commands.database import with_existing_sessions, with_sessions
from app.config import Settings


async def _create(
    sessions: async_sessionmaker[AsyncSession], name: str, project: str | None, new: bool
) -> tuple[KeyInfo, str, str]:
    if project is not None:
        note = "the project named by --project"
    elif new:
        note = "a new project (--new-project)"
    else:
        project = await default_project_id(sessions)
        note = (
            "the default project (the first key's), reused; --new-project makes another"
            if project is not None
            else "a new project, now the default for keys created without --project"
        )
    info, secret = await create_key(sessions, name, project)
    return info, secret, note


def create(args: argparse.Namespace, settings: Settings) -> int:
    info, secret, note = asyncio.run(
        with_sessions(settings, _create, args.name, args.project, args.new_project)
    )
    print(f"created key {info.id} ({info.name}) in project {info.project_id}")
    print(f"  {note}")
    print(secret)
    return 0


def listing(args: argparse.Namespace, settings: Settings) -> int:
    keys: list[KeyInfo] = asyncio.run(with_existing_sessions(settings, list_keys))
    if not keys:
        print("no keys yet: mint one with `rapport keys create --name NAME`", file=sys.stderr)
        return 0
    for info in keys:
        state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
        used = f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "never"
        print(
            f"{info.id}\t{info.project_id}\t{info.name}\t{info.display}\t{state}\tlast used {used}"
        )
    return 0


def revoke(args: argparse.Namespace, settings: Settings) -> int:
    revoked: Any = asyncio.run(with_existing_sessions(settings, revoke_key, args.key_id))
    if revoked:
        print(f"revoked {args.key_id}")
        return 0
    print(f"rapport: no active key with id {args.key_id}", file=sys.stderr)
    return 1
