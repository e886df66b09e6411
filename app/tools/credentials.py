"""MCP credentials in a background response's stored request: sealed, never in the clear.

A background response runs later, maybe in another process, from the request stored with it;
its MCP servers' `headers` and `authorization` must reach the worker, but must not sit in the
database readable. They are stored sealed with the server key (Fernet, as compaction items
are) under one opaque field, and opened only by the worker that runs the response. Foreground
responses store no request at all.
"""

from __future__ import annotations

from typing import Any, Protocol

SEALED_FIELD = "sealed_credentials"
_SECRET_FIELDS = ("headers", "authorization")


class Sealer(Protocol):
    def seal(self, payload: dict[str, Any]) -> str: ...

    def open(self, token: str) -> dict[str, Any]: ...


def seal_tools(tools: list[dict[str, Any]] | None, sealer: Sealer) -> list[dict[str, Any]] | None:
    """The tools as stored: each MCP tool's secret fields replaced by one sealed field."""
    if not tools:
        return tools
    stored = []
    for tool in tools:
        secrets = {key: tool[key] for key in _SECRET_FIELDS if tool.get(key) is not None}
        if tool.get("type") != "mcp" or not secrets:
            stored.append(tool)
            continue
        kept = {key: value for key, value in tool.items() if key not in _SECRET_FIELDS}
        stored.append({**kept, SEALED_FIELD: sealer.seal(secrets)})
    return stored


def open_tools(tools: list[dict[str, Any]] | None, sealer: Sealer) -> list[dict[str, Any]] | None:
    """The tools as the client sent them, for the worker's run."""
    if not tools:
        return tools
    opened = []
    for tool in tools:
        token = tool.get(SEALED_FIELD)
        if token is None:
            opened.append(tool)
            continue
        kept = {key: value for key, value in tool.items() if key != SEALED_FIELD}
        opened.append({**kept, **sealer.open(token)})
    return opened
