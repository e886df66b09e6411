"""Tenancy: the one helper every repository uses to restrict a statement to its owner.

Another project's ids must behave exactly like ids that do not exist, so ownership is part of
the WHERE clause (a foreign row is simply not found), never a check after loading.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.sql import Select, Update

Statement = TypeVar("Statement", Select[Any], Update)


def owned(statement: Statement, model: Any, project_id: str, *, live: bool = True) -> Statement:
    """`statement` limited to `project_id`'s rows, and to rows not deleted when `live`."""
    statement = statement.where(model.project_id == project_id)
    if live and hasattr(model, "deleted_at"):
        statement = statement.where(model.deleted_at.is_(None))
    return statement
