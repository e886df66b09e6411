"""create_app(): the only wiring module — routes, dependencies, error handlers, lifespan."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, WebSocket, get, websocket
from litestar.di import Provide
from litestar.exceptions import HTTPException

from app import __version__, outage, readiness, shutdown
from app.auth import Authenticator, Caller
from app.config import Settings, load_settings
from app.console import ConsolePlugin, openapi_viewers
from app.contract.document import ContractConfig
from app.conversations.controller import ConversationsController
from app.conversations.service import ConversationService
from app.errors import ApiError
from app.http import (
    handle_api_error,
    handle_http_exception,
    handle_store_unavailable,
    handle_unexpected,
    request_id_middleware,
)
from app.idempotency.guard import IdempotentCreates
from app.models.controller import ModelsController
from app.models.service import ModelService
from app.observability import access, facts, tracing
from app.observability.metrics import metrics_route
from app.options import options_allow_middleware
from app.prompts.controller import PromptsController
from app.prompts.service import PromptService
from app.queue.sweeper import sweep_forever
from app.responses.background import BackgroundResponses
from app.responses.controller import ResponsesController
from app.responses.service import ResponseService
from app.responses.window_service import WindowService
from app.runs import jobs
from app.runtime import Runtime
from app.transports.websocket import WebSocketTransport


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    authenticator: Authenticator = request.app.state.authenticator
    caller = await authenticator.authenticate(request.headers.get("authorization"))
    facts.note_caller(caller.project_id)
    return caller


def provide_response_service(request: Request[Any, Any, Any]) -> ResponseService:
    return request.app.state.response_service  # type: ignore[no-any-return]


def provide_window_service(request: Request[Any, Any, Any]) -> WindowService:
    return request.app.state.window_service  # type: ignore[no-any-return]


def provide_background(request: Request[Any, Any, Any]) -> BackgroundResponses:
    return request.app.state.background  # type: ignore[no-any-return]


def provide_prompt_service(request: Request[Any, Any, Any]) -> PromptService:
    return request.app.state.prompt_service  # type: ignore[no-any-return]


def provide_model_service(request: Request[Any, Any, Any]) -> ModelService:
    return request.app.state.model_service  # type: ignore[no-any-return]


def provide_idempotency(request: Request[Any, Any, Any]) -> IdempotentCreates:
    return request.app.state.idempotency  # type: ignore[no-any-return]


def provide_conversation_service(request: Request[Any, Any, Any]) -> ConversationService:
    return request.app.state.conversation_service  # type: ignore[no-any-return]


@get("/health", summary="The process is up", include_in_schema=True)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", summary="Database, schema, Redis and a worker (when configured) are there")
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    ok, body = await readiness.check(request.app.state.runtime)
    return Response(body, status_code=200 if ok else 503)


@websocket("/v1/responses")
async def responses_socket(socket: WebSocket[Any, Any, Any]) -> None:
    """WebSocket mode, on the very path of `POST /v1/responses`: Litestar (2.x throughout)
    keeps an HTTP route and a websocket route of one path on one routing node, each scope type
    reaching its own handler, so no ASGI dispatch of our own is needed."""
    transport: WebSocketTransport = socket.app.state.websocket
    await transport.serve(socket)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.runtime = runtime
        await runtime.open()
        shutdown.chain_handlers(settings.shutdown_grace_seconds)
        app.state.authenticator = Authenticator(runtime.sessions)
        responses = ResponseService(runtime)
        app.state.response_service = responses
        app.state.window_service = WindowService(runtime)
        app.state.background = BackgroundResponses(runtime, responses)
        app.state.conversation_service = ConversationService(runtime.sessions)
        app.state.prompt_service = PromptService(runtime.sessions)
        app.state.idempotency = IdempotentCreates(runtime.sessions)
        app.state.websocket = WebSocketTransport(
            app.state.authenticator, responses, app.state.prompt_service
        )
        app.state.model_service = ModelService(runtime.providers, settings.models_file)
        sweeper: asyncio.Task[None] | None = None
        if runtime.redis is None:
            # The embedded default runs background jobs, and repairs them, in this process.
            runtime.local_job = functools.partial(jobs.run_job, runtime, responses)
            sweeper = asyncio.create_task(sweep_forever(runtime))
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
            await runtime.close()

    tracing.configure()
    plugin = tracing.litestar_plugin()
    app = Litestar(
        route_handlers=[
            ResponsesController,
            responses_socket,
            ConversationsController,
            PromptsController,
            ModelsController,
            health,
            ready,
            metrics_route,
        ],
        dependencies={
            "caller": Provide(provide_caller),
            "service": Provide(provide_response_service, sync_to_thread=False),
            "background": Provide(provide_background, sync_to_thread=False),
            "windows": Provide(provide_window_service, sync_to_thread=False),
            "conversations": Provide(provide_conversation_service, sync_to_thread=False),
            "prompts": Provide(provide_prompt_service, sync_to_thread=False),
            "models": Provide(provide_model_service, sync_to_thread=False),
            "idempotency": Provide(provide_idempotency, sync_to_thread=False),
        },
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
            **dict.fromkeys(outage.UNREACHABLE, handle_store_unavailable),
            Exception: handle_unexpected,
        },
        middleware=[request_id_middleware, options_allow_middleware],
        lifespan=[lifespan],
        openapi_config=ContractConfig(
            title="Rapport", version=__version__, path="/openapi", render_plugins=openapi_viewers()
        ),
        debug=False,
        logging_config=None,
        plugins=[ConsolePlugin(), *([plugin] if plugin is not None else [])],
    )
    # Outside Litestar's router, so unknown routes and Litestar's own refusals are logged too.
    access.install(app)
    return app
