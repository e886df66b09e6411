"""The stored history a new response continues from: a chain's or a conversation's items.

A chain costs two queries at any depth (the head row, then one recursive read of its
ancestors' items, stopped at the window by the head's running count); a conversation's is one
range read. Either comes with the item store's
cached token counts, so the window can be fitted without re-tokenizing the past, and with a
`Cut` only the newest items that can fit are read at all (app/context/repository.py): the
cost of a turn follows the window, not the length of the history.

A cut history starts where truncation would have started it: a tool result whose call was cut
is dropped with it. Should the cut have removed a call that the new input answers (truncation
keeps such calls), the history is read again whole, and truncation decides as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import repository as reads
from app.conversations import repository as conversations
from app.errors import InvalidRequest, NotFound
from app.responses import repository

_CHAINABLE = frozenset({"completed", "incomplete", "cancelled"})
_CALLS = frozenset({"function_call", "custom_tool_call"})
_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})


class History(msgspec.Struct):
    """Stored items, oldest first, with their cached token counts (None: not cached), and
    the tokens of the older items a cut left unread."""

    bodies: list[dict[str, Any]] = msgspec.field(default_factory=list)
    counts: list[int | None] = msgspec.field(default_factory=list)
    omitted_tokens: int = 0

    # The encoding `counts` are in. None for what the item store reads: it reads the counts of
    # the encoding it is asked for. A history kept in memory (a WebSocket connection's last
    # response) names its own, since the next turn may count with another.
    encoding: str | None = None

    # The tokens of the whole chain this history was read from, when the item store could
    # count every item of it (no count missing or in another encoding, no compaction): what a
    # response continuing it adds its own to for its chain's running count, also where the
    # head has none yet (a chain begun before migration 0011 heals on its next turn). Never
    # set on a history kept in memory, which the item store would not find behind the head.
    stored_total: int | None = None

    def counted_in(self, encoding: str) -> History:
        """This history with counts usable under `encoding` (dropped when they are another's)."""
        if self.encoding in (None, encoding):
            return self
        return History(self.bodies, [None] * len(self.bodies), encoding=encoding)

    def followed_by(self, *later: History) -> History:
        """This history and then `later` ones, as one (in this history's encoding)."""
        bodies, counts = list(self.bodies), list(self.counts)
        for part in later:
            bodies += part.bodies
            counts += part.counts
        return History(bodies, counts, encoding=self.encoding)


class Cut(msgspec.Struct, frozen=True):
    """Read only what can fit: `budget` tokens of history; `pinned`, the call ids the new
    input answers (their calls must be in the history)."""

    budget: int
    pinned: frozenset[str] = frozenset()


async def _bounded(read: Callable[[int | None], Awaitable[reads.Read]], cut: Cut | None) -> History:
    got = await read(cut.budget if cut is not None else None)
    if got.omitted_tokens == 0:
        return History(got.bodies, got.counts)
    assert cut is not None
    calls = {body.get("call_id") for body in got.bodies if body.get("type") in _CALLS}
    if not cut.pinned <= calls:
        got = await read(None)  # a call the new input answers was cut: truncation decides
        return History(got.bodies, got.counts)
    kept = [
        index
        for index, body in enumerate(got.bodies)
        if body.get("type") not in _OUTPUTS or body.get("call_id") in calls
    ]
    dropped = sum(got.counts[i] or 0 for i in range(len(got.bodies)) if i not in set(kept))
    return History(
        [got.bodies[i] for i in kept], [got.counts[i] for i in kept], got.omitted_tokens + dropped
    )


async def chain(
    session: AsyncSession,
    project_id: str,
    previous_response_id: str | None,
    encoding: str,
    cut: Cut | None = None,
) -> History:
    """The stored items a new response continues from, oldest first."""
    if previous_response_id is None:
        return History()
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
    newest = previous_response_id
    running = head.chain_tokens if head.chain_encoding == encoding else None
    read = await _bounded(
        lambda budget: reads.chain_items(session, project_id, newest, encoding, budget, running),
        cut,
    )
    countable = None not in read.counts and not any(
        body.get("type") == conversations.COMPACTION for body in read.bodies
    )
    if countable:
        read.stored_total = sum(count or 0 for count in read.counts) + read.omitted_tokens
    return read


async def conversation(
    session: AsyncSession,
    project_id: str,
    conversation_id: str,
    response_id: str,
    now: datetime,
    lease_seconds: float,
    encoding: str,
    cut: Cut | None = None,
) -> History:
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
    return await _bounded(
        lambda budget: reads.conversation_items(session, conversation_id, encoding, budget), cut
    )


async def conversation_snapshot(
    session: AsyncSession, project_id: str, conversation_id: str, encoding: str
) -> History:
    """A conversation's items without taking its lock: for counting, which appends nothing."""
    if await conversations.get(session, project_id, conversation_id) is None:
        raise NotFound(f"Conversation with id '{conversation_id}' not found.", param="conversation")
    got = await reads.conversation_items(session, conversation_id, encoding)
    return History(got.bodies, got.counts)
