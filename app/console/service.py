"""The console's read use cases: each page's data in one short unit of work, free of HTTP.

Every read is scoped by the session's project; an id that is not the project's (or that was
deleted) raises the API's own NotFound, so the console answers 404 exactly where the API does.
"""

from __future__ import annotations

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Caller
from app.console import items as item_views
from app.console import views
from app.console.filters import ResponseFilters
from app.console.queries import conversations as conversation_queries
from app.console.queries import keys as key_queries
from app.console.queries import responses as response_queries
from app.console.views import (
    Chain,
    ConversationDetail,
    ConversationItemView,
    ItemsPage,
    ResponseDetail,
    ResponsesPage,
)
from app.db.session import unit_of_work
from app.errors import NotFound, response_not_found
from app.responses.service import ResponseService
from app.wire import codec

PAGE_SIZE = 50
ITEMS_PAGE = 100
OUTPUT_ITEMS = 500
RECENT_BACKGROUND = 50
CONVERSATION_RESPONSES = 50


class ConsoleReads:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], responses: ResponseService
    ) -> None:
        self._sessions = sessions
        self._responses = responses

    async def responses_page(
        self,
        caller: Caller,
        filters: ResponseFilters,
        *,
        after: str | None = None,
        before: str | None = None,
        problems: tuple[str, ...] = (),
    ) -> ResponsesPage:
        notes = list(problems)
        async with unit_of_work(self._sessions) as session:
            found = await response_queries.page(
                session, caller.project_id, filters, after=after, before=before, limit=PAGE_SIZE
            )
            if found is None:
                notes.append("That page no longer exists; showing the newest responses.")
                found = await response_queries.page(
                    session, caller.project_id, filters, after=None, before=None, limit=PAGE_SIZE
                )
                after = before = None
            assert found is not None
            models = await response_queries.models(session, caller.project_id)
        rows, more = found
        summaries = [views.summary(row) for row in rows]
        going_newer = before is not None and after is None
        newer = (
            summaries[0].id if summaries and (after is not None or (going_newer and more)) else None
        )
        older = summaries[-1].id if summaries and (going_newer or more) else None
        return ResponsesPage(summaries, newer, older, models, notes)

    async def response_exists(self, caller: Caller, response_id: str) -> bool:
        async with unit_of_work(self._sessions) as session:
            return await response_queries.exists(session, caller.project_id, response_id)

    async def response_detail(self, caller: Caller, response_id: str) -> ResponseDetail:
        # The raw JSON is the API's own answer, from the very service `GET /v1/responses/{id}`
        # calls: what the console shows as raw is what a client would get.
        wire = await self._responses.retrieve(caller, response_id)
        async with unit_of_work(self._sessions) as session:
            row = await response_queries.get(session, caller.project_id, response_id)
            if row is None:
                raise response_not_found(response_id)
            chain = await _chain(session, caller.project_id, response_id)
            inputs = await _items(session, row.id, "input", -1, ITEMS_PAGE)
            outputs = await _items(session, row.id, "output", -1, OUTPUT_ITEMS)
            key_names = await key_queries.names(session, caller.project_id)
        summary = views.summary(row)
        return ResponseDetail(
            response=summary,
            params=row.params,
            instructions=row.instructions,
            metadata=row.metadata_,
            usage=row.usage,
            error=row.error,
            incomplete_details=row.incomplete_details,
            chain=chain,
            input=inputs,
            output=outputs,
            raw_json=item_views.pretty_json(msgspec.json.decode(codec.encoder.encode(wire))),
            key_name=key_names.get(row.key_id or ""),
        )

    async def items_page(
        self, caller: Caller, response_id: str, side: str, after_position: int
    ) -> ItemsPage:
        async with unit_of_work(self._sessions) as session:
            if not await response_queries.exists(session, caller.project_id, response_id):
                raise response_not_found(response_id)
            return await _items(session, response_id, side, after_position, ITEMS_PAGE)

    async def background(self, caller: Caller) -> list[views.ResponseSummary]:
        async with unit_of_work(self._sessions) as session:
            rows = await response_queries.background(session, caller.project_id, RECENT_BACKGROUND)
        return [views.summary(row) for row in rows]

    async def conversations_page(
        self, caller: Caller, after: str | None
    ) -> tuple[list[views.ConversationSummary], str | None]:
        async with unit_of_work(self._sessions) as session:
            found = await conversation_queries.page(
                session, caller.project_id, after=after, limit=PAGE_SIZE
            )
            if found is None:
                found = await conversation_queries.page(
                    session, caller.project_id, after=None, limit=PAGE_SIZE
                )
        assert found is not None
        rows, more = found
        summaries = [views.conversation(row) for row in rows]
        return summaries, (summaries[-1].id if more and summaries else None)

    async def conversation_detail(
        self, caller: Caller, conversation_id: str, after_seq: int = -1
    ) -> ConversationDetail:
        async with unit_of_work(self._sessions) as session:
            row = await conversation_queries.get(session, caller.project_id, conversation_id)
            if row is None:
                raise NotFound(f"Conversation with id '{conversation_id}' not found.")
            item_rows = await conversation_queries.items(
                session, conversation_id, after_seq, ITEMS_PAGE
            )
            writers = await response_queries.of_conversation(
                session, caller.project_id, conversation_id, CONVERSATION_RESPONSES
            )
        page = item_rows[:ITEMS_PAGE]
        grouped = item_views.present((item.seq, item.body) for item in page)
        writer_of = {item.seq: item.response_id for item in page}
        return ConversationDetail(
            conversation=views.conversation(row),
            items=[
                ConversationItemView(view.position or 0, writer_of.get(view.position or 0), view)
                for view in grouped
            ],
            next_seq=page[-1].seq if len(item_rows) > ITEMS_PAGE else None,
            responses=[views.summary(writer) for writer in writers],
        )


async def _chain(session: AsyncSession, project_id: str, response_id: str) -> Chain:
    found = await response_queries.ancestors(session, project_id, response_id)
    ancestors = [views.summary(row) for row in reversed(found)]
    truncated = (
        bool(found)
        and found[-1].previous_response_id is not None
        and (found[-1].depth >= response_queries.CHAIN_DEPTH)
    )
    shown = [*(a.id for a in ancestors), response_id]
    children: dict[str, list[views.ResponseSummary]] = {}
    for row in await response_queries.continuations(session, project_id, shown):
        children.setdefault(row.previous_response_id, []).append(views.summary(row))
    return Chain(ancestors, truncated, children)


async def _items(
    session: AsyncSession, response_id: str, side: str, after: int, limit: int
) -> ItemsPage:
    rows = await response_queries.items(session, response_id, side, after, limit)
    page = rows[:limit]
    return ItemsPage(item_views.present(page), page[-1][0] if len(rows) > limit and page else None)
