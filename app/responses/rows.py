"""The `responses` row of a create: built from the prepared request, inserted, then settled.

Kept apart from the service so that what is stored for a response, and what the Response echoes
once it ends (the service tier the upstream actually used), is read in one place.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app import ids
from app.auth import Caller
from app.db.base import utcnow
from app.db.models import ResponseRow
from app.responses import convert
from app.responses.validation import PreparedRequest
from app.tools import credentials
from app.tools.credentials import Sealer


def new_row(caller: Caller, prepared: PreparedRequest, sealer: Sealer) -> ResponseRow:
    request = prepared.request
    background = bool(request.background)
    return ResponseRow(
        id=ids.new_id(ids.RESPONSE),
        project_id=caller.project_id,
        key_id=caller.key_id,
        status="queued" if background else "in_progress",
        model=prepared.model,
        background=background,
        # A background response runs later, maybe in another process: keep its request
        # (its MCP credentials sealed).
        request=_stored_request(prepared, sealer) if background else None,
        previous_response_id=request.previous_response_id,
        conversation_id=prepared.conversation_id,
        params=convert.echoed_params(request, prepared.parsed_tools.echoed),
        instructions=request.instructions,
        metadata_=dict(request.metadata or {}),
        created_at=utcnow(),
        attempts=0 if background else 1,  # a worker's claim counts each background run
    )


def _stored_request(prepared: PreparedRequest, sealer: Sealer) -> dict[str, Any]:
    request = prepared.request
    tools = credentials.seal_tools(request.tools, sealer)
    return msgspec.to_builtins(msgspec.structs.replace(request, input=None, tools=tools))  # type: ignore[no-any-return]


def final_values(row: ResponseRow, values: dict[str, Any]) -> dict[str, Any]:
    """The columns an ending writes: `values`, with the service tier actually used."""
    final = dict(values)
    params = row.params
    actual_tier = final.pop("service_tier", None)
    if actual_tier or params["service_tier"] == "auto":
        # The Response echoes the tier actually used; `auto` settles on `default`.
        final["params"] = {**params, "service_tier": actual_tier or "default"}
    return final


def apply_final(row: ResponseRow, values: dict[str, Any]) -> dict[str, Any]:
    """Set the terminal values on the in-memory row (it is what the client gets back)."""
    final = final_values(row, values)
    for key, value in final.items():
        setattr(row, key, value)
    return final


def insert_values(row: ResponseRow) -> dict[str, Any]:
    """The row as the columns of one INSERT (cheaper than the ORM's unit of work)."""
    return {
        "id": row.id,
        "project_id": row.project_id,
        "key_id": row.key_id,
        "status": row.status,
        "model": row.model,
        "background": row.background,
        "previous_response_id": row.previous_response_id,
        "conversation_id": row.conversation_id,
        "params": row.params,
        "instructions": row.instructions,
        "request": row.request,
        "metadata": row.metadata_,
        "created_at": row.created_at,
        "heartbeat_at": row.created_at,
        "attempts": row.attempts,
    }
