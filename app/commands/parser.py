"""Every `rapport` subcommand with its help: what each option does, its default, and the
environment variables the command reads — so `--help` answers without the README."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from app import __version__
from app.commands import keys, records, serve
from app.config import DEFAULT_DATABASE_URL, DEFAULT_UPSTREAM_BASE_URL, Settings

Handler = Callable[[argparse.Namespace, Settings], int]

ENVIRONMENT: dict[str, str] = {
    "RAPPORT_DATABASE_URL": f"database (default {DEFAULT_DATABASE_URL}, a file in this folder)",
    "RAPPORT_REDIS_URL": "Redis for background jobs (default unset: jobs run in `rapport serve`)",
    "RAPPORT_UPSTREAM_BASE_URL": f"catch-all model server (default {DEFAULT_UPSTREAM_BASE_URL})",
    "RAPPORT_UPSTREAM_API_KEY": "its key (default: OPENAI_API_KEY)",
    "RAPPORT_MODELS": "TOML models file routing model names to upstreams (default unset)",
    "RAPPORT_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR (default INFO)",
    "RAPPORT_LOG_FORMAT": "json or console (default: console on a terminal, else json)",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "send OpenTelemetry traces there (default unset: off)",
}
_DATABASE = ["RAPPORT_DATABASE_URL"]
_SERVER = [*ENVIRONMENT]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help (when it has one worth saying), and descriptions
    and epilogs (the environment) kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet = action.default in (None, False, argparse.SUPPRESS) or action.required
        if quiet or "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)"


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=88)


def _environment(names: list[str]) -> str:
    width = max(len(name) for name in names)
    lines = [f"  {name:<{width}}  {ENVIRONMENT[name]}" for name in names]
    return "environment:\n" + "\n".join(lines)


def _add(
    commands: Any, name: str, summary: str, handler: Handler | None, env: list[str], **extra: Any
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=_wrap(extra.pop("description", summary[0].upper() + summary[1:] + ".")),
        epilog=_environment(env) if env else None,
        formatter_class=_Formatter,
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def _actions(commands: Any, name: str, summary: str) -> Any:
    group = _add(commands, name, summary, None, [])
    return group.add_subparsers(required=True, metavar="ACTION", title="actions")


def build(database_handlers: Mapping[str, Handler], prompts: Callable[[Any], None]) -> Any:
    parser = argparse.ArgumentParser(
        prog="rapport",
        description=_wrap(
            "Rapport: OpenAI's stateful Responses and Conversations APIs in front of any "
            "model. Quick start: `rapport keys create --name me && rapport serve`."
        ),
        epilog=_environment(list(ENVIRONMENT)) + "\n\nEach command's --help says more.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"rapport {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", title="commands")

    run = _add(
        commands,
        "serve",
        "run the HTTP API",
        serve.serve,
        _SERVER,
        description=(
            "Run the HTTP API (OpenAI base URL http://HOST:PORT/v1). On the SQLite default it "
            "migrates the database itself; without RAPPORT_REDIS_URL it also runs background "
            "jobs (use one process then)."
        ),
    )
    run.add_argument("--host", default="127.0.0.1", help="address to listen on")
    run.add_argument("--port", type=int, default=8000, help="port to listen on")
    run.add_argument("--workers", type=int, default=1, help="uvicorn processes")

    work = _add(commands, "worker", "run background jobs from Redis", serve.worker, _SERVER)
    work.add_argument("--concurrency", type=int, default=16, help="jobs run at once")
    work.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve this worker's Prometheus metrics (its runs' upstream calls, tokens, jobs) "
        "at http://HOST:PORT/metrics (default: not served)",
    )
    work.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port")

    db = _actions(commands, "db", "database migrations (Alembic)")
    upgrade = _add(
        db, "upgrade", "migrate to the newest schema", database_handlers["upgrade"], _DATABASE
    )
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision")
    downgrade = _add(
        db,
        "downgrade",
        "migrate back to REV ('base' drops every table)",
        database_handlers["downgrade"],
        _DATABASE,
    )
    downgrade.add_argument("revision", help="target revision, or 'base'")

    key_actions = _actions(commands, "keys", "gateway keys")
    create = _add(
        key_actions,
        "create",
        "mint a key; prints the secret as the last line",
        keys.create,
        _DATABASE,
        description=(
            "Mint a gateway key and print its secret as the last line of stdout (shown only "
            "now). Without --project or --new-project the key joins the default project (the "
            "first key's), so keys minted later see the same responses; the first key makes it."
        ),
    )
    create.add_argument("--name", required=True, help="a label for the key, shown by `keys list`")
    where = create.add_mutually_exclusive_group()
    where.add_argument("--project", default=None, help="an existing project id to join")
    where.add_argument("--new-project", action="store_true", help="make a new project")
    _add(key_actions, "list", "list keys (never their secrets)", keys.listing, _DATABASE)
    revoke = _add(key_actions, "revoke", "revoke a key by its id", keys.revoke, _DATABASE)
    revoke.add_argument("key_id", help="the key's id (key_…), from `keys list`")

    responses = _actions(commands, "responses", "read stored responses (JSON, all projects)")
    listing = _add(responses, "list", "newest responses first", records.list_responses, _DATABASE)
    listing.add_argument("--project", default=None, help="only this project's (default: all)")
    listing.add_argument("--limit", type=int, default=20, help="how many")
    show = _add(
        responses,
        "show",
        "one response with its input and output items",
        records.show_response,
        _DATABASE,
    )
    show.add_argument("response_id", help="resp_…")

    conversations = _actions(commands, "conversations", "read stored conversations (JSON)")
    conversation = _add(
        conversations,
        "show",
        "a conversation and its items in order",
        records.show_conversation,
        _DATABASE,
    )
    conversation.add_argument("conversation_id", help="conv_…")
    conversation.add_argument(
        "--limit", type=int, default=None, help="first N items (default: all)"
    )

    prompts(commands)
    return parser
