"""Tenancy: the one helper every repository uses to restrict a statement to its owner.

Another project's ids must behave exactly like ids that do not exist, so ownership is part of
the WHERE clause (a foreign row is simply not found), never a check after loading.
"""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql import Select, Update

Statement = TypeVar("Statement", Select[Any], Update)


def owned(statement: Statement, model: Any, project_id: str, *, live: bool = True) -> Statement:
    """`statement` limited to `project_id`'s rows, and to rows not deleted when `live`."""
    statement = statement.where(model.project_id == project_id)
    if live and hasattr(model, "deleted_at"):
        statement = statement.where(model.deleted_at.is_(None))
    return statement


def owned_row(
    statement: Statement, model: Any, project_id: str, row_id: str, *, live: bool = True
) -> Statement:
    """`statement` limited to the row `row_id` if `project_id` owns it (and, when `live`, it
    is not deleted). The primary key finds the row; the owner is checked on it in a form no
    index matches (`owner_of`), so the plan is a key lookup whatever the planner knows."""
    statement = statement.where(model.id == row_id, owner_of(model.project_id, project_id))
    if live and hasattr(model, "deleted_at"):
        statement = statement.where(model.deleted_at.is_(None))
    return statement


def owner_of(column: Any, project_id: Any) -> sa.ColumnElement[bool]:
    """`column = project_id`, spelt `column || '' = project_id` so no index on the project
    column can serve it. On tables never analyzed, Postgres estimates one row both for the
    primary key and for `project_id = …`, and a tie may go to a project index: a scan of the
    whole project (and a heap fetch per row) to find one row by its id."""
    unindexed: sa.ColumnElement[str] = column.concat(sa.literal_column("''"))
    matches: sa.ColumnElement[bool] = unindexed == project_id
    return matches
