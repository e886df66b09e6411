"""Model name → route → provider: first match in the models file wins, then the catch-all."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Mapping

import httpx
import msgspec

from app.config import ModelRoute, Settings
from app.observability.upstream import ObservedProvider
from app.providers.anthropic import AnthropicProvider
from app.providers.base import Provider
from app.providers.chat_completions import ChatCompletionsProvider
from app.providers.deadline import DeadlinedProvider
from app.providers.gemini import GeminiProvider
from app.providers.openai_responses import OpenAIResponsesProvider

Builder = Callable[[ModelRoute, str | None, httpx.AsyncClient], Provider]
# The models file's `provider` → its adapter; each takes (route, api key, the shared client).
PROVIDERS: dict[str, Builder] = {
    "openai-chat": ChatCompletionsProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "openai-responses": OpenAIResponsesProvider,
}


class ProviderRegistry:
    """Built once per process; holds one provider per route, all sharing one httpx client."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        catch_all = _bounded(
            ModelRoute(
                name="*",
                base_url=settings.upstream_base_url,
                timeout_seconds=settings.upstream_timeout_seconds,
            ),
            settings,
        )
        self._routes: list[tuple[ModelRoute, Provider]] = []
        for route in (_bounded(route, settings) for route in settings.routes):
            api_key = env.get(route.api_key_env) if route.api_key_env else None
            models_file = settings.models_file or "the models file"
            where = f"the base_url of the route {route.name!r} in {models_file} (RAPPORT_MODELS)"
            if route.provider == "openai-chat":
                provider: Provider = ChatCompletionsProvider(route, api_key, client, setting=where)
            else:
                provider = PROVIDERS[route.provider](route, api_key, client)
            self._routes.append((route, provider))
        self._catch_all = ChatCompletionsProvider(
            catch_all, settings.upstream_api_key, client, setting="RAPPORT_UPSTREAM_BASE_URL"
        )
        # Every call bounded by its route's deadline, then timed and counted per route
        # (app/observability/upstream.py).
        self._routes = [(route, _wrapped(route, p)) for route, p in self._routes]
        self._fallback: tuple[ModelRoute, Provider] = (
            catch_all,
            _wrapped(catch_all, self._catch_all),
        )

    @property
    def named_routes(self) -> tuple[ModelRoute, ...]:
        return tuple(route for route, _ in self._routes)

    @property
    def catch_all(self) -> ChatCompletionsProvider:
        """The upstream for every model the models file does not name."""
        return self._catch_all

    @property
    def fallback(self) -> tuple[ModelRoute, Provider]:
        """What `resolve` answers for a model no route names."""
        return self._fallback

    def resolve(self, model: str) -> tuple[ModelRoute, Provider]:
        for route, provider in self._routes:
            if route.name == model or fnmatch.fnmatchcase(model, route.name):
                return route, provider
        return self._fallback


def _bounded(route: ModelRoute, settings: Settings) -> ModelRoute:
    """The route with the global deadline and answer cap wherever it sets none of its own."""
    return msgspec.structs.replace(
        route,
        deadline_seconds=route.deadline_seconds or settings.upstream_deadline_seconds,
        max_answer_bytes=route.max_answer_bytes or settings.max_answer_bytes,
    )


def _wrapped(route: ModelRoute, provider: Provider) -> Provider:
    assert route.deadline_seconds is not None  # _bounded set it
    return ObservedProvider(route.name, DeadlinedProvider(provider, route.deadline_seconds))
