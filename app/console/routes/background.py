"""Background responses, live: the page, the table htmx polls, and cancel."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.console.actions import ConsoleActions
from app.console.pages import is_htmx, navigate, page
from app.console.service import ConsoleReads
from app.console.session import ConsoleSession

AnyRequest = Request[Any, Any, Any]


class BackgroundController(Controller):
    @get("/background")
    async def background_page(
        self,
        request: AnyRequest,
        console_session: NamedDependency[ConsoleSession],
        console_reads: NamedDependency[ConsoleReads],
    ) -> Template:
        rows = await console_reads.background(console_session.caller)
        template = "background/_table.html" if is_htmx(request) else "background/page.html"
        return page(template, console_session, rows=rows, nav="background", notice=None)

    @post("/responses/{response_id:str}/cancel", status_code=200)
    async def cancel(
        self,
        request: AnyRequest,
        response_id: FromPath[str],
        console_session: NamedDependency[ConsoleSession],
        console_reads: NamedDependency[ConsoleReads],
        console_actions: NamedDependency[ConsoleActions],
    ) -> Response[Any]:
        cancelled = await console_actions.cancel(console_session.caller, response_id)
        if request.headers.get("hx-target") != "background":
            return navigate(request, f"/console/responses/{response_id}")
        rows = await console_reads.background(console_session.caller)
        notice = f"{cancelled.id} is {cancelled.status.replace('_', ' ')}."
        return page(
            "background/_table.html", console_session, rows=rows, nav="background", notice=notice
        )
