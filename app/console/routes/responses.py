"""Responses: the filtered list, one response's page, and more of its input items."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.console import filters
from app.console.filters import STATUSES
from app.console.pages import is_htmx, navigate, page
from app.console.service import ConsoleReads
from app.console.session import ConsoleSession
from app.errors import InvalidRequest

AnyRequest = Request[Any, Any, Any]


class ResponsesController(Controller):
    path = "/responses"

    @get("/")
    async def list_responses(
        self,
        request: AnyRequest,
        console_session: NamedDependency[ConsoleSession],
        console_reads: NamedDependency[ConsoleReads],
    ) -> Response[Any]:
        query = {key: request.query_params.get(key) or "" for key in request.query_params}
        parsed = filters.parse(query)
        caller = console_session.caller
        found_id = parsed.filters.response_id
        if found_id is not None:
            if await console_reads.response_exists(caller, found_id):
                return navigate(request, f"/console/responses/{found_id}")
            parsed = filters.Parsed(
                parsed.filters, (*parsed.problems, f"No response '{found_id}' in this project.")
            )
        results = await console_reads.responses_page(
            caller,
            parsed.filters,
            after=query.get("after") or None,
            before=query.get("before") or None,
            problems=parsed.problems,
        )
        kept = {k: v for k, v in query.items() if k not in ("after", "before") and v}
        context: dict[str, Any] = {
            "results": results,
            "query": kept,
            "statuses": STATUSES,
            "nav": "responses",
        }
        if is_htmx(request) and request.headers.get("hx-target") == "results":
            return page("responses/_results.html", console_session, **context)
        return page("responses/list.html", console_session, **context)

    @get("/{response_id:str}")
    async def detail(
        self,
        response_id: FromPath[str],
        console_session: NamedDependency[ConsoleSession],
        console_reads: NamedDependency[ConsoleReads],
    ) -> Template:
        detail = await console_reads.response_detail(console_session.caller, response_id)
        return page("responses/detail.html", console_session, detail=detail, nav="responses")

    @get("/{response_id:str}/items")
    async def more_items(
        self,
        request: AnyRequest,
        response_id: FromPath[str],
        console_session: NamedDependency[ConsoleSession],
        console_reads: NamedDependency[ConsoleReads],
    ) -> Template:
        side = request.query_params.get("side", "input")
        if side not in ("input", "output"):
            raise InvalidRequest("side is input or output.")
        try:
            after = int(request.query_params.get("after", "-1"))
        except ValueError:
            raise InvalidRequest("after is an item position.") from None
        items = await console_reads.items_page(console_session.caller, response_id, side, after)
        return page(
            "responses/_items_page.html",
            console_session,
            items=items,
            response_id=response_id,
            side=side,
        )
