"""Usage: tokens and requests per model or per key over a window, as charts."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Template

from app.console import usage_report
from app.console.pages import page
from app.console.session import ConsoleSession

AnyRequest = Request[Any, Any, Any]


class UsageController(Controller):
    @get("/usage")
    async def usage_page(
        self, request: AnyRequest, console_session: NamedDependency[ConsoleSession]
    ) -> Template:
        report = await usage_report.report(
            request.app.state.runtime.sessions,
            console_session.caller,
            request.query_params.get("range", "24h"),
            request.query_params.get("by", "model"),
        )
        return page(
            "usage.html",
            console_session,
            report=report,
            # Read by static/console.js from a JSON script element (`tojson` escapes `<`, `>`
            # and `&`, so a model name cannot close the element): no inline script runs.
            chart_data=msgspec.to_builtins(report),
            ranges=list(usage_report.RANGES),
            groupings=usage_report.GROUPINGS,
            nav="usage",
        )
