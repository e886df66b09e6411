"""`rapport responses list|show` and `rapport conversations show`: operators' read-only views.

Straight from the database, across projects (an operator has no gateway key to scope by):
each prints one JSON document on stdout, the stored objects in their API shapes, with the
project id and the deletion time beside them, so `jq` can take it from there. These are the
only cross-project reads in Rapport, so their SQL lives here rather than in the
owner-scoped repositories.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.commands.database import require_existing_database, with_sessions
from app.commands.failures import CommandError
from app.config import Settings
from app.conversations import convert as conversation_convert
from app.db.models import Conversation, ConversationItem, Item, ResponseRow
from app.db.session import unit_of_work
from app.responses import convert
from app.wire import codec

Sessions = async_sessionmaker[AsyncSession]


def _seconds(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def _summary(row: ResponseRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "status": row.status,
        "model": row.model,
        "background": row.background,
        "created_at": _seconds(row.created_at),
        "completed_at": _seconds(row.completed_at),
        "deleted_at": _seconds(row.deleted_at),
        "previous_response_id": row.previous_response_id,
        "conversation_id": row.conversation_id,
        "usage": row.usage,
        "error": row.error,
    }


async def _list_responses(sessions: Sessions, project: str | None, limit: int) -> dict[str, Any]:
    statement = sa.select(ResponseRow).order_by(
        ResponseRow.created_at.desc(), ResponseRow.id.desc()
    )
    if project is not None:
        statement = statement.where(ResponseRow.project_id == project)
    async with unit_of_work(sessions) as session:
        rows = (await session.scalars(statement.limit(limit))).all()
    return {"object": "list", "data": [_summary(row) for row in rows]}


async def _bodies(session: AsyncSession, response_id: str, side: str) -> list[dict[str, Any]]:
    rows = await session.scalars(
        sa.select(Item.body)
        .where(Item.response_id == response_id, Item.side == side)
        .order_by(Item.position)
    )
    return list(rows)


async def _show_response(sessions: Sessions, response_id: str) -> dict[str, Any]:
    async with unit_of_work(sessions) as session:
        row = await session.get(ResponseRow, response_id)
        if row is None:
            raise CommandError(f"no response with id {response_id}")
        output = await _bodies(session, response_id, "output")
        inputs = await _bodies(session, response_id, "input")
    return {
        "project_id": row.project_id,
        "deleted_at": _seconds(row.deleted_at),
        "response": msgspec.to_builtins(convert.to_wire(row, output)),
        "input_items": inputs,
    }


async def _show_conversation(
    sessions: Sessions, conversation_id: str, limit: int | None
) -> dict[str, Any]:
    async with unit_of_work(sessions) as session:
        row = await session.get(Conversation, conversation_id)
        if row is None:
            raise CommandError(f"no conversation with id {conversation_id}")
        statement = (
            sa.select(Item.body)
            .join(ConversationItem, ConversationItem.item_id == Item.id)
            .where(ConversationItem.conversation_id == conversation_id)
            .order_by(ConversationItem.seq)
        )
        if limit is not None:
            statement = statement.limit(limit)
        items = list(await session.scalars(statement))
    return {
        "project_id": row.project_id,
        "deleted_at": _seconds(row.deleted_at),
        "active_response_id": row.active_response_id,
        "conversation": msgspec.to_builtins(conversation_convert.to_wire(row)),
        "items": items,
    }


def _print(settings: Settings, action: Any, *args: Any) -> int:
    require_existing_database(settings)
    document = asyncio.run(with_sessions(settings, action, *args, migrate=False))
    print(codec.encoder.encode(document).decode())
    return 0


def list_responses(args: argparse.Namespace, settings: Settings) -> int:
    return _print(settings, _list_responses, args.project, args.limit)


def show_response(args: argparse.Namespace, settings: Settings) -> int:
    return _print(settings, _show_response, args.response_id)


def show_conversation(args: argparse.Namespace, settings: Settings) -> int:
    return _print(settings, _show_conversation, args.conversation_id, args.limit)
