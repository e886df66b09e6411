"""Rendering a template: `{{name}}` placeholders filled from the request's `variables`.

A string variable (or an `input_text` part) fills text wherever its placeholder stands. An
`input_image` or `input_file` variable replaces a text part that is nothing but its
placeholder; inside longer text it is refused, as there is no way to put an image mid-sentence.
A placeholder without a variable, and a variable the template never uses, are 400s: either is
almost always a typo, and OpenAI refuses both.
"""

from __future__ import annotations

import re
from typing import Any

from app.errors import InvalidRequest

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_PART_VARIABLES = ("input_image", "input_file")


def render(
    instructions: str | None,
    template_input: list[dict[str, Any]] | None,
    variables: dict[str, Any] | None,
) -> tuple[str | None, list[dict[str, Any]]]:
    """The template's instructions and input items with every placeholder filled."""
    values = dict(variables or {})
    used: set[str] = set()
    rendered_instructions = _text(instructions, values, used) if instructions else instructions
    items = [_item(item, values, used) for item in template_input or []]
    unused = sorted(set(values) - used)
    if unused:
        raise InvalidRequest(
            f"Unknown prompt variable '{unused[0]}': the template has no such placeholder.",
            param=f"prompt.variables.{unused[0]}",
            code="invalid_value",
        )
    return rendered_instructions, items


def _item(item: dict[str, Any], values: dict[str, Any], used: set[str]) -> dict[str, Any]:
    content = item.get("content")
    if isinstance(content, str):
        content = [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        return item
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") in ("input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append(_part(part, values, used))
        else:
            parts.append(part)
    return {**item, "content": parts}


def _part(part: dict[str, Any], values: dict[str, Any], used: set[str]) -> dict[str, Any]:
    whole = _PLACEHOLDER.fullmatch(part["text"].strip())
    if whole is not None:
        value = _value(whole.group(1), values, used)
        if isinstance(value, dict) and value.get("type") in _PART_VARIABLES:
            return value
    return {**part, "text": _text(part["text"], values, used)}


def _text(text: str, values: dict[str, Any], used: set[str]) -> str:
    def fill(match: re.Match[str]) -> str:
        value = _value(match.group(1), values, used)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and value.get("type") == "input_text":
            return str(value.get("text", ""))
        raise InvalidRequest(
            f"Prompt variable '{match.group(1)}' is an {value.get('type', 'object')} and can "
            "only stand alone in a text part of the template.",
            param=f"prompt.variables.{match.group(1)}",
            code="invalid_value",
        )

    return _PLACEHOLDER.sub(fill, text)


def _value(name: str, values: dict[str, Any], used: set[str]) -> Any:
    if name not in values:
        raise InvalidRequest(
            f"Missing prompt variable '{name}' required by the template.",
            param="prompt.variables",
            code="missing_required_parameter",
        )
    used.add(name)
    return values[name]
