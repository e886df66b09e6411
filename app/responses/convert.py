"""Request → echoed parameters, and stored row → wire Response: the one place each is made."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from app.db.models import ResponseRow
from app.wire import hosted_tools
from app.wire.hosted_tools import HostedToolSpec, McpTool, WebSearchTool
from app.wire.responses import (
    ConversationRef,
    CreateResponseRequest,
    IncompleteDetails,
    Response,
    ResponseError,
    ResponseUsage,
)
from app.wire.tools import Tool, echo_tool

_DEFAULT_TEXT = {"format": {"type": "text"}, "verbosity": "medium"}


def echoed_params(
    request: CreateResponseRequest, tools: tuple[Tool | HostedToolSpec, ...]
) -> dict[str, Any]:
    """The request parameters as the Response echoes them, OpenAI's defaults filled in."""
    reasoning = request.reasoning
    return {
        "frequency_penalty": request.frequency_penalty or 0.0,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "parallel_tool_calls": (
            True if request.parallel_tool_calls is None else request.parallel_tool_calls
        ),
        "presence_penalty": request.presence_penalty or 0.0,
        "prompt": msgspec.to_builtins(request.prompt) if request.prompt else None,
        "prompt_cache_key": request.prompt_cache_key,
        "prompt_cache_retention": request.prompt_cache_retention,
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": (reasoning.summary or reasoning.generate_summary) if reasoning else None,
        },
        "safety_identifier": request.safety_identifier,
        "service_tier": request.service_tier or "auto",
        "store": request.store is not False,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "text": msgspec.to_builtins(request.text) if request.text else dict(_DEFAULT_TEXT),
        "tool_choice": (
            "auto" if request.tool_choice is None else msgspec.to_builtins(request.tool_choice)
        ),
        "tools": [
            hosted_tools.echo(tool)
            if isinstance(tool, McpTool | WebSearchTool)
            else echo_tool(tool)
            for tool in tools
        ],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "truncation": request.truncation or "disabled",
        "user": request.user,
        # Kept with the response for whoever reads the row; `to_wire` never echoes it.
        "client_metadata": request.client_metadata,
    }


def to_wire(row: ResponseRow, output: list[dict[str, Any]]) -> Response:
    params = row.params
    return Response(
        id=row.id,
        created_at=_seconds(row.created_at),
        status=row.status,  # type: ignore[arg-type]
        background=row.background,
        completed_at=_seconds(row.completed_at) if row.completed_at else None,
        conversation=(
            ConversationRef(row.conversation_id) if row.conversation_id else msgspec.UNSET
        ),
        error=msgspec.convert(row.error, ResponseError) if row.error else None,
        # Rows stored before penalties were accepted have none: OpenAI's 0.0 then.
        frequency_penalty=float(params.get("frequency_penalty") or 0.0),
        incomplete_details=(
            msgspec.convert(row.incomplete_details, IncompleteDetails)
            if row.incomplete_details
            else None
        ),
        instructions=row.instructions,
        max_output_tokens=params["max_output_tokens"],
        max_tool_calls=params["max_tool_calls"],
        model=row.model,
        output=output,
        parallel_tool_calls=params["parallel_tool_calls"],
        presence_penalty=float(params.get("presence_penalty") or 0.0),
        previous_response_id=row.previous_response_id,
        prompt=params["prompt"],
        prompt_cache_key=params["prompt_cache_key"],
        prompt_cache_retention=params["prompt_cache_retention"],
        reasoning=params["reasoning"],
        safety_identifier=params["safety_identifier"],
        service_tier=params["service_tier"],
        store=params["store"],
        temperature=params["temperature"],
        text=params["text"],
        tool_choice=params["tool_choice"],
        tools=params["tools"],
        top_logprobs=params["top_logprobs"],
        top_p=params["top_p"],
        truncation=params["truncation"],
        usage=msgspec.convert(row.usage, ResponseUsage) if row.usage else None,
        user=params["user"],
        metadata=row.metadata_,
    )


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())
