"""Where the database's schema stands against the migrations this code ships.

`/ready` and `rapport serve` both ask: is the database there, has it a Rapport schema at all,
and is it at the newest revision? Each answer names what to run, because the usual cause of a
missing or old schema is a skipped `rapport db upgrade`.
"""

from __future__ import annotations

import functools
from typing import Literal

import msgspec
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

UPGRADE_HINT = "run `rapport db upgrade`"


class SchemaState(msgspec.Struct, frozen=True):
    current: str | None  # the database's revision; None: no Rapport schema there
    head: str

    @property
    def state(self) -> Literal["missing", "pending", "current", "ahead"]:
        if self.current is None:
            return "missing"
        if self.current == self.head:
            return "current"
        return "pending" if self.current in _revisions() else "ahead"

    def problem(self) -> str | None:
        """None when the schema is the code's, else a sentence saying what to do."""
        state = self.state
        if state == "missing":
            return f"the database has no Rapport schema: {UPGRADE_HINT}"
        if state == "pending":
            return (
                f"migrations are pending (database at {self.current}, this code needs "
                f"{self.head}): {UPGRADE_HINT}"
            )
        if state == "ahead":
            return (
                f"the database is at revision {self.current}, which this version of Rapport "
                f"does not know (newest here: {self.head}): run the matching Rapport version"
            )
        return None


@functools.cache
def head_revision() -> str:
    """The newest revision of `migrations/` (read once per process)."""
    from alembic.script import ScriptDirectory

    from app.cli import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    return ",".join(sorted(heads))


@functools.cache
def _revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    from app.cli import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(revision.revision for revision in script.walk_revisions())


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) or None


async def inspect(engine: AsyncEngine) -> SchemaState:
    """Read the database's revision; raises whatever the driver raises when it is unreachable."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current)
    return SchemaState(current=current, head=head_revision())
