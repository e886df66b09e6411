"""MCP approvals across turns: which `mcp_approval_response` items of a new turn answer which
`mcp_approval_request` of its context, checked before anything is stored.

A response that asked for approval ended there; the client answers with an
`mcp_approval_response` input item on the next turn (by `previous_response_id`, on the
conversation, or replaying the whole history as input). The answered request is found in the
context; a request that already has its `mcp_call` (a replayed, executed approval) is not run
again.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.errors import InvalidRequest


class Decision(msgspec.Struct, frozen=True):
    request: dict[str, Any]
    approve: bool
    reason: str | None = None


def pending(context: list[dict[str, Any]], new_input: list[dict[str, Any]]) -> list[Decision]:
    """The approval answers among the new input that still await their call."""
    requests = {item["id"]: item for item in context if item["type"] == "mcp_approval_request"}
    done = {item.get("approval_request_id") for item in context if item["type"] == "mcp_call"}
    decisions = []
    for item in new_input:
        if item["type"] != "mcp_approval_response":
            continue
        request_id = item["approval_request_id"]
        if request_id in done or request_id not in requests:
            continue
        decisions.append(Decision(requests[request_id], bool(item["approve"]), item.get("reason")))
    return decisions


def check(context: list[dict[str, Any]]) -> None:
    """Every approval answer names a request before it in the context (OpenAI's 400 else)."""
    requested: set[str] = set()
    for item in context:
        if item["type"] == "mcp_approval_request":
            requested.add(item["id"])
        elif item["type"] == "mcp_approval_response":
            request_id = item["approval_request_id"]
            if request_id not in requested:
                raise InvalidRequest(
                    f"No approval request found with id '{request_id}'.",
                    param="input",
                    code="invalid_value",
                )


def repoint(sent: list[Any], bodies: list[dict[str, Any]]) -> None:
    """An approval request replayed as input is stored under a fresh id (every stored item
    is); the answers sent with it named its old id, so they are re-pointed to the new one."""
    renamed = {
        getattr(item, "id", None): body["id"]
        for item, body in zip(sent, bodies, strict=True)
        if body["type"] == "mcp_approval_request"
    }
    if not renamed:
        return
    for body in bodies:
        if body["type"] == "mcp_approval_response":
            request_id = body["approval_request_id"]
            body["approval_request_id"] = renamed.get(request_id, request_id)
