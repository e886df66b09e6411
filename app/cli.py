"""The `rapport` command: serve, worker, db, keys, prompts.

Each subcommand reads settings once and builds only what it needs; `keys create` prints the new
secret as the last line of stdout so scripts can capture it with `tail -n 1`.
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
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        return int(args.handler(args, settings) or 0)
    except ConfigError as exc:
        print(f"rapport: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rapport", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser("worker", help="run background jobs from Redis")
    worker.add_argument("--concurrency", type=int, default=16)
    worker.set_defaults(handler=_worker)

    db = commands.add_parser("db", help="database migrations").add_subparsers(
        required=True, metavar="ACTION"
    )
    upgrade = db.add_parser("upgrade", help="migrate to the newest schema")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=_db_upgrade)
    downgrade = db.add_parser("downgrade", help="migrate back to REV ('base' drops everything)")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=_db_downgrade)

    keys = commands.add_parser("keys", help="gateway keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = keys.add_parser("create", help="mint a key; prints the secret as the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--project", default=None, help="an existing project id (default: new)")
    create.set_defaults(handler=_keys_create)
    keys.add_parser("list", help="list keys (never their secrets)").set_defaults(handler=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_keys_revoke)
    from app.prompts.cli import add_commands

    add_commands(commands, _with_sessions)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app import logs

    logs.configure(settings.log_level)
    if settings.is_embedded_database:
        migrate(settings.database_url, "head")
    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from app import logs
    from app.queue.worker import run_worker

    if not settings.redis_url:
        print(
            "rapport: the worker needs RAPPORT_REDIS_URL; without it `rapport serve` runs "
            "background jobs itself",
            file=sys.stderr,
        )
        return 2
    logs.configure(settings.log_level)
    if settings.is_embedded_database:
        migrate(settings.database_url, "head")
    run_on_fastest_loop(run_worker(settings, args.concurrency))
    return 0


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
    migrate(settings.database_url, args.revision, down=True)
    print(f"database at {args.revision}")
    return 0


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth import create_key

    info, secret = asyncio.run(_with_sessions(settings, create_key, args.name, args.project))
    print(f"created key {info.id} ({info.name}) in project {info.project_id}")
    print(secret)
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth import list_keys

    for info in asyncio.run(_with_sessions(settings, list_keys)):
        state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
        used = f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "never"
        print(
            f"{info.id}\t{info.project_id}\t{info.name}\t{info.display}\t{state}\tlast used {used}"
        )
    return 0


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth import revoke_key

    if asyncio.run(_with_sessions(settings, revoke_key, args.key_id)):
        print(f"revoked {args.key_id}")
        return 0
    print(f"rapport: no active key with id {args.key_id}", file=sys.stderr)
    return 1


async def _with_sessions(settings: Settings, action, *args):  # type: ignore[no-untyped-def]
    """Run one key action with a short-lived engine; the embedded database is migrated first."""
    from app.db.session import create_engine, create_sessionmaker

    if settings.is_embedded_database:
        await asyncio.to_thread(migrate, settings.database_url, "head")
    engine = create_engine(settings.database_url)
    try:
        return await action(create_sessionmaker(engine), *args)
    finally:
        await engine.dispose()
