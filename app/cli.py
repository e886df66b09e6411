"""The `rapport` command: serve, worker, db, keys, responses, conversations, prompts.

Each subcommand reads settings once and builds only what it needs; `keys create` prints the new
secret as the last line of stdout so scripts can capture it with `tail -n 1`. Expected failures
(a bad setting, a database that is down or not migrated, a port in use) end in one sentence on
stderr and exit status 2 or 1; the subcommands themselves live in `app/commands/`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from app.config import ConfigError, Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    from app.commands import parser as commands
    from app.commands.failures import CommandError, explain
    from app.prompts.cli import add_commands

    handlers = {"upgrade": _db_upgrade, "downgrade": _db_downgrade}
    parser = commands.build(handlers, lambda group: add_commands(group, _with_existing_sessions))
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"rapport: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args, settings) or 0)
    except CommandError as exc:
        print(f"rapport: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = explain(exc, settings)
        if message is None:
            raise  # not an expected condition: a bug, whose traceback helps
        print(f"rapport: {message}", file=sys.stderr)
        return 1


def run_on_fastest_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop where it is installed (uvicorn[standard] brings it on Linux and macOS), as the
    API's uvicorn does: a worker spends much of its time writing to sockets (Redis events,
    Postgres, the upstream), which uvloop does in C."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def alembic_config(database_url: str):  # type: ignore[no-untyped-def]
    """Alembic's config built in code, so migrations run from an installed package too."""
    from alembic.config import Config

    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = database_url
    return config


def migrate(database_url: str, revision: str, *, down: bool = False) -> None:
    """Run the migrations; on Postgres they end with ANALYZE of the tables that hold rows
    (migrations/env.py), so plans never rest on a planner's guesses."""
    from alembic import command

    config = alembic_config(database_url)
    if down:
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings.database_url, args.revision)
    print(f"database at {args.revision}")
    return 0


def _db_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    from app.commands.database import require_existing_database

    require_existing_database(settings)
    migrate(settings.database_url, args.revision, down=True)
    print(f"database at {args.revision}")
    return 0


async def _with_sessions(settings: Settings, action, *args):  # type: ignore[no-untyped-def]
    """Run one action with a short-lived engine; the embedded database is migrated first."""
    from app.commands.database import with_sessions

    return await with_sessions(settings, action, *args)


async def _with_existing_sessions(settings: Settings, action, *args):  # type: ignore[no-untyped-def]
    """As `_with_sessions`, refusing to create a SQLite database that is not there."""
    from app.commands.database import with_existing_sessions

    return await with_existing_sessions(settings, action, *args)
