"""Conversations: the list, and one conversation's items with the responses that wrote them."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.console.pages import is_htmx, page
from app.console.service import ConsoleReads
from app.console.session import ConsoleSession

AnyRequest = Request[Any, Any, Any]


class ConversationsController(Controller):
    path = "/conversations"

    @get("/")
    async def list_conversations(
        self,
        request: AnyRequest,
        console_session: NamedDependency[ConsoleSession],
        console_reads: NamedDependency[ConsoleReads],
    ) -> Template:
        after = request.query_params.get("after") or None
        rows, older = await console_reads.conversations_page(console_session.caller, after)
        return page(
            "conversations/list.html",
            console_session,
            rows=rows,
            older=older,
            paged=after is not None,
            nav="conversations",
        )

    @get("/{conversation_id:str}")
    async def detail(
        self,
        request: AnyRequest,
        conversation_id: FromPath[str],
        console_session: NamedDependency[ConsoleSession],
        console_reads: NamedDependency[ConsoleReads],
    ) -> Template:
        try:
            after = int(request.query_params.get("after", "-1"))
        except ValueError:
            after = -1
        detail = await console_reads.conversation_detail(
            console_session.caller, conversation_id, after
        )
        template = "conversations/_items.html" if is_htmx(request) else "conversations/detail.html"
        return page(template, console_session, detail=detail, nav="conversations")
