"""`rapport prompts …`: manage prompt templates of a project from the shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from app.config import Settings
from app.errors import ApiError
from app.wire import codec
from app.wire.prompts import CreatePromptRequest


def add_commands(commands: Any, run: Any) -> None:
    """`run(settings, action, *args)` runs `action(sessions, *args)` on a short-lived engine."""
    prompts = commands.add_parser("prompts", help="prompt templates").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = prompts.add_parser("create", help="a new prompt, or a new version with --id")
    create.add_argument("--project", required=True)
    create.add_argument("--id", default=None)
    create.add_argument("--instructions", default=None)
    create.add_argument("--instructions-file", type=Path, default=None)
    create.add_argument("--input-file", type=Path, default=None, help="JSON list of input items")
    create.set_defaults(handler=lambda a, s: _create(a, s, run))
    listing = prompts.add_parser("list", help="the newest version of each prompt")
    listing.add_argument("--project", required=True)
    listing.set_defaults(handler=lambda a, s: _call(s, run, "list", a.project))
    show = prompts.add_parser("show", help="one prompt as JSON")
    show.add_argument("--project", required=True)
    show.add_argument("prompt_id")
    show.add_argument("--version", type=int, default=None)
    show.set_defaults(
        handler=lambda a, s: _call(s, run, "retrieve", a.project, a.prompt_id, a.version)
    )
    remove = prompts.add_parser("delete", help="delete a prompt, every version")
    remove.add_argument("--project", required=True)
    remove.add_argument("prompt_id")
    remove.set_defaults(handler=lambda a, s: _call(s, run, "delete", a.project, a.prompt_id))


def _create(args: argparse.Namespace, settings: Settings, run: Any) -> int:
    instructions = args.instructions
    if args.instructions_file is not None:
        instructions = args.instructions_file.read_text(encoding="utf-8")
    items = None
    if args.input_file is not None:
        items = json.loads(args.input_file.read_text(encoding="utf-8"))
    body = CreatePromptRequest(id=args.id, instructions=instructions, input=items)
    return _call(settings, run, "create", args.project, body)


def _call(settings: Settings, run: Any, method: str, *args: Any) -> int:
    from app.prompts.service import PromptService

    async def action(sessions: Any, *call_args: Any) -> Any:
        return await getattr(PromptService(sessions), method)(*call_args)

    try:
        result = asyncio.run(run(settings, action, *args))
    except ApiError as exc:
        print(f"rapport: {exc.message}", file=sys.stderr)
        return 1
    print(codec.encoder.encode(result).decode())
    return 0
