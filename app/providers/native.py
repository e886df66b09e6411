"""A provider's own reasoning state, carried in a reasoning item's `encrypted_content`.

Thinking models want something of theirs back on later turns: Anthropic a thinking block's
`signature` (or a redacted block's `data`), Gemini a part's `thoughtSignature`, a Responses
upstream its reasoning item's id and `encrypted_content`. Rapport keeps it on the reasoning
item it stored, as `rapport.<provider>.<base64url JSON>`: tagged by provider, because a
conversation may move to another model, whose provider must leave foreign state alone (a
signature is checked by the provider that made it, so carrying it in the clear is safe).

When a client asks for `reasoning.encrypted_content`, the sealed copy (app/context/
sealed_reasoning.py) wraps this value, and opening it gives it back.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

PREFIX = "rapport."


def wrap(provider: str, state: dict[str, Any]) -> str:
    encoded = base64.urlsafe_b64encode(msgspec.json.encode(state)).decode().rstrip("=")
    return f"{PREFIX}{provider}.{encoded}"


def is_native(encrypted_content: object) -> bool:
    return isinstance(encrypted_content, str) and encrypted_content.startswith(PREFIX)


def unwrap(provider: str, encrypted_content: object) -> dict[str, Any] | None:
    """This provider's state, or None for anything else (another provider's, a sealed blob,
    a value a client altered)."""
    tag = f"{PREFIX}{provider}."
    if not isinstance(encrypted_content, str) or not encrypted_content.startswith(tag):
        return None
    encoded = encrypted_content[len(tag) :]
    try:
        state = msgspec.json.decode(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    return state if isinstance(state, dict) else None


def of_item(provider: str, item: dict[str, Any]) -> dict[str, Any] | None:
    """The state a reasoning item carries for this provider."""
    if item.get("type") != "reasoning":
        return None
    return unwrap(provider, item.get("encrypted_content"))
