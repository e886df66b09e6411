"""`GET /v1/models`: the models file's exact names, then what the catch-all upstream lists.

A glob route (`llama-*`) is not a model, so it is not listed; an upstream model that such a
route would take is left out too, since asking for it would not reach the catch-all. The
upstream's list is fetched at most once a minute per process (a failed fetch is retried sooner)
and contributes nothing when the upstream cannot answer: listing models never fails because an
upstream is down.
"""

from __future__ import annotations

import asyncio
import os
import time

from app.config import ModelRoute
from app.errors import NotFound
from app.providers.registry import ProviderRegistry
from app.wire.models import Model, ModelList

CACHE_SECONDS = 60.0
RETRY_SECONDS = 10.0  # after an upstream that listed nothing, so an outage heals quickly
FETCH_TIMEOUT_SECONDS = 5.0
OWNER = "rapport"
_GLOB_CHARACTERS = frozenset("*?[")


def model_not_found(model: str) -> NotFound:
    return NotFound(f"The model '{model}' does not exist", param="model", code="model_not_found")


class ModelService:
    def __init__(self, providers: ProviderRegistry, models_file: str | None) -> None:
        self._providers = providers
        self._configured_at = _modified_at(models_file)
        self._upstream: list[Model] = []
        self._fresh_until = 0.0
        self._lock = asyncio.Lock()

    async def list_models(self) -> ModelList:
        named = [self._named(route) for route in self._providers.named_routes if _exact(route)]
        seen = {model.id for model in named}
        listed = [
            model
            for model in await self._upstream_models()
            if model.id not in seen and self._reaches_catch_all(model.id)
        ]
        return ModelList(data=named + _unique(listed))

    async def retrieve(self, model: str) -> Model:
        for found in (await self.list_models()).data:
            if found.id == model:
                return found
        raise model_not_found(model)

    def _named(self, route: ModelRoute) -> Model:
        return Model(id=route.name, created=self._configured_at, owned_by=OWNER)

    def _reaches_catch_all(self, model: str) -> bool:
        return self._providers.resolve(model) is self._providers.fallback

    async def _upstream_models(self) -> list[Model]:
        async with self._lock:  # one fetch at a time; the others wait and read its result
            if time.monotonic() >= self._fresh_until:
                self._upstream = await self._providers.catch_all.list_models(FETCH_TIMEOUT_SECONDS)
                ttl = CACHE_SECONDS if self._upstream else RETRY_SECONDS
                self._fresh_until = time.monotonic() + ttl
            return self._upstream


def _exact(route: ModelRoute) -> bool:
    return not _GLOB_CHARACTERS.intersection(route.name)


def _unique(models: list[Model]) -> list[Model]:
    seen: set[str] = set()
    kept: list[Model] = []
    for model in models:
        if model.id not in seen:
            seen.add(model.id)
            kept.append(model)
    return kept


def _modified_at(models_file: str | None) -> int:
    """When the named models were configured: the models file's mtime, else start-up."""
    if models_file:
        try:
            return int(os.stat(models_file).st_mtime)
        except OSError:
            pass
    return int(time.time())
