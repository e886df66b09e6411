"""`include: ["reasoning.encrypted_content"]`: reasoning a client can carry but not read.

Stateless clients (`store: false`, Codex-style) send earlier reasoning items back as input. The
reasoning text travels sealed with the server's key (app/sealing.py) in `encrypted_content`, and
is opened again when the item comes back, so an upstream that takes reasoning
(`replay_reasoning` on its route) gets it as if the response had been stored.

A reasoning item may already carry its provider's own state in `encrypted_content` (a thinking
signature: app/providers/native.py). The sealed copy keeps it inside, and opening the item —
from a client, or from the store, where the sealed copy is what was kept — gives it back, so
the provider finds its signature whichever way the item returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.context.compaction import Sealer
from app.errors import InvalidRequest
from app.providers import native
from app.providers.translate import reasoning_text

INCLUDE = "reasoning.encrypted_content"
_PAYLOAD_VERSION = 1


def wanted(include: Sequence[str] | None) -> bool:
    return INCLUDE in (include or ())


def seal(sealer: Sealer, item: dict[str, Any]) -> None:
    """Add `encrypted_content` to a finished reasoning output item."""
    if item.get("type") == "reasoning":
        payload: dict[str, Any] = {"v": _PAYLOAD_VERSION, "text": reasoning_text(item)}
        if native.is_native(item.get("encrypted_content")):
            payload["native"] = item["encrypted_content"]
        item["encrypted_content"] = sealer.seal(payload)


def opened(sealer: Sealer, context: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The context with every sealed reasoning item opened (as a copy: the stored item keeps
    what the client sent): its text back where it carries only the sealed copy, and its
    provider's own state back in `encrypted_content`. A blob that is not Rapport's (a client's
    own) is refused where the item has no text, and left as it is beside text."""
    result = []
    for body in context:
        blob = body.get("encrypted_content")
        if body.get("type") == "reasoning" and blob and not native.is_native(blob):
            if not reasoning_text(body):
                payload = _open(sealer, body)
                text = [{"type": "reasoning_text", "text": payload["text"]}]
                body = {**body, "content": text, "encrypted_content": payload.get("native")}
            elif (stored := _try_open(sealer, str(blob))) is not None:
                body = {**body, "encrypted_content": stored.get("native")}
        result.append(body)
    return result


def _try_open(sealer: Sealer, blob: str) -> dict[str, Any] | None:
    try:
        return sealer.open(blob)
    except Exception:  # noqa: BLE001  (not a blob of ours: left to whoever made it)
        return None


def _open(sealer: Sealer, body: dict[str, Any]) -> dict[str, Any]:
    try:
        payload = sealer.open(str(body["encrypted_content"]))
    except Exception:  # noqa: BLE001  (any unreadable blob is the same client error)
        payload = {}
    if not isinstance(payload.get("text"), str):
        raise InvalidRequest(
            "The encrypted content of a reasoning item could not be verified.",
            param="input",
            code="invalid_encrypted_content",
        )
    return payload
