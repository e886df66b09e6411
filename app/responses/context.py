"""THE place a response's context is built: history from the chain, then the new input.

History for `previous_response_id` costs two queries at any depth (the head row, then one
recursive read of every ancestor's items). Tool-call pairing is checked on the whole context
here, before anything is stored or sent, with OpenAI's messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations import repository as conversations
from app.errors import InvalidRequest, NotFound
from app.responses import repository

_CHAINABLE = frozenset({"completed", "incomplete", "cancelled"})


async def history(
    session: AsyncSession, project_id: str, previous_response_id: str | None
) -> list[dict[str, Any]]:
    """The stored items a new response continues from, oldest first."""
    if previous_response_id is None:
        return []
    head = await repository.get_response(session, project_id, previous_response_id)
    if head is None:
        raise InvalidRequest(
            f"Previous response with id '{previous_response_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    if head.status not in _CHAINABLE:
        raise InvalidRequest(
            f"Previous response with id '{previous_response_id}' has status '{head.status}'; "
            "only completed, incomplete or cancelled responses can be continued.",
            param="previous_response_id",
            code="invalid_value",
        )
    return await repository.chain_item_bodies(session, project_id, previous_response_id)


async def conversation_history(
    session: AsyncSession,
    project_id: str,
    conversation_id: str,
    response_id: str,
    now: datetime,
    lease_seconds: float,
) -> list[dict[str, Any]]:
    """Lock the conversation for `response_id`, then read its items in order (one range read).

    Locking first means the items read are the ones the response continues: nobody else can
    append a turn in between.
    """
    if await conversations.get(session, project_id, conversation_id) is None:
        raise NotFound(f"Conversation with id '{conversation_id}' not found.", param="conversation")
    if not await conversations.acquire_lease(
        session, conversation_id, response_id, now, lease_seconds
    ):
        raise InvalidRequest(
            "Another process is currently operating on this conversation. "
            "Please retry in a few seconds.",
            param="conversation",
            code="conversation_locked",
            headers={"x-should-retry": "false"},
        )
    return await conversations.item_bodies(session, conversation_id)


def check_tool_pairing(context: list[dict[str, Any]]) -> None:
    """Every call has an output after it, and every output answers a call before it."""
    calls: list[str] = []
    answered: set[str] = set()
    for item in context:
        if item["type"] == "function_call":
            calls.append(item["call_id"])
        elif item["type"] == "function_call_output":
            if item["call_id"] not in calls:
                raise InvalidRequest(
                    f"No tool call found for function call output with call_id {item['call_id']}.",
                    param="input",
                )
            answered.add(item["call_id"])
    for call_id in calls:
        if call_id not in answered:
            raise InvalidRequest(
                f"No tool output found for function call {call_id}.", param="input"
            )
