"""The console's routes, on one router under /console: guarded, with HTML errors and headers."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router
from litestar.di import Provide

from app.console.access import provide_session, require_session
from app.console.actions import ConsoleActions
from app.console.pages import EXCEPTION_HANDLERS, security_headers
from app.console.routes.background import BackgroundController
from app.console.routes.conversations import ConversationsController
from app.console.routes.keys import KeysController
from app.console.routes.responses import ResponsesController
from app.console.routes.sign_in import SignInController
from app.console.routes.usage import UsageController
from app.console.service import ConsoleReads


def provide_reads(request: Request[Any, Any, Any]) -> ConsoleReads:
    state = request.app.state
    return ConsoleReads(state.runtime.sessions, state.response_service)


def provide_actions(request: Request[Any, Any, Any]) -> ConsoleActions:
    state = request.app.state
    return ConsoleActions(state.runtime.sessions, state.background)


def console_router() -> Router:
    return Router(
        path="/console",
        route_handlers=[
            SignInController,
            ResponsesController,
            ConversationsController,
            BackgroundController,
            UsageController,
            KeysController,
        ],
        guards=[require_session],
        dependencies={
            "console_session": Provide(provide_session, sync_to_thread=False),
            "console_reads": Provide(provide_reads, sync_to_thread=False),
            "console_actions": Provide(provide_actions, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[security_headers],
        include_in_schema=False,
    )
