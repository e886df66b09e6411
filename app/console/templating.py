"""The console's Jinja environment: autoescaped templates and the filters the pages use.

Autoescaping is on for every template, so stored text (model output, tool arguments, metadata)
is always shown as text, never run as markup.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine

from app import __version__
from app.console import items

TEMPLATES = Path(__file__).parent / "templates"


def template_engine() -> JinjaTemplateEngine:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=when,
        iso=iso,
        seconds=seconds,
        number=number,
        pretty_json=items.pretty_json,
        pretty_arguments=items.pretty_arguments,
        text_of=items.text_of,
        parts=items.parts,
    )
    environment.globals.update(version=__version__)
    return JinjaTemplateEngine.from_environment(environment)


def when(moment: datetime | None) -> str:
    """UTC, to the second: the same instant reads the same to everyone on the project."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "—"
