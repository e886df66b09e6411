"""`include: ["reasoning.encrypted_content"]`: reasoning a client can carry but not read.

Stateless clients (`store: false`, Codex-style) send earlier reasoning items back as input. The
reasoning text travels sealed with the server's key (app/sealing.py) in `encrypted_content`, and
is opened again when the item comes back, so an upstream that takes reasoning
(`replay_reasoning` on its route) gets it as if the response had been stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.context.compaction import Sealer
from app.errors import InvalidRequest
from app.providers.translate import reasoning_text

INCLUDE = "reasoning.encrypted_content"
_PAYLOAD_VERSION = 1


def wanted(include: Sequence[str] | None) -> bool:
    return INCLUDE in (include or ())


def seal(sealer: Sealer, item: dict[str, Any]) -> None:
    """Add `encrypted_content` to a finished reasoning output item."""
    if item.get("type") == "reasoning":
        payload = {"v": _PAYLOAD_VERSION, "text": reasoning_text(item)}
        item["encrypted_content"] = sealer.seal(payload)


def opened(sealer: Sealer, context: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The context with every reasoning item that carries only its sealed text given its text
    back (as a copy: the stored item keeps what the client sent)."""
    result = []
    for body in context:
        if (
            body.get("type") == "reasoning"
            and body.get("encrypted_content")
            and not (reasoning_text(body))
        ):
            body = {**body, "content": [{"type": "reasoning_text", "text": _open(sealer, body)}]}
        result.append(body)
    return result


def _open(sealer: Sealer, body: dict[str, Any]) -> str:
    try:
        text = sealer.open(str(body["encrypted_content"]))["text"]
    except Exception:  # noqa: BLE001  (any unreadable blob is the same client error)
        text = None
    if not isinstance(text, str):
        raise InvalidRequest(
            "The encrypted content of a reasoning item could not be verified.",
            param="input",
            code="invalid_encrypted_content",
        )
    return text
