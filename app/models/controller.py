"""HTTP routes of the Models API: list, and retrieve one by name (names may hold slashes)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from app.auth import Caller
from app.models.service import ModelService
from app.wire.models import Model, ModelList


class ModelsController(Controller):
    path = "/v1/models"
    tags = ["models"]  # noqa: RUF012  (Litestar reads a class attribute)

    @get("/", summary="List the models this server serves")
    async def list_models(
        self, caller: NamedDependency[Caller], models: NamedDependency[ModelService]
    ) -> ModelList:
        return await models.list_models()

    @get("/{model:path}", summary="Retrieve a model")
    async def retrieve(
        self,
        model: FromPath[str],
        caller: NamedDependency[Caller],
        models: NamedDependency[ModelService],
    ) -> Model:
        return await models.retrieve(model.removeprefix("/"))
