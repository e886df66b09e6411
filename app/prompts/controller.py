"""`/admin/prompts`: Rapport's own routes for prompt templates, under the gateway's keys.

OpenAI has no public API for prompt templates, so these live outside `/v1`; a key manages its
own project's templates only (another project's id is a 404).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from app.auth import Caller
from app.http import check_path_ids, int_param
from app.prompts.service import PromptService
from app.wire import codec
from app.wire.prompts import CreatePromptRequest, PromptDeleted, PromptList, PromptObject


class PromptsController(Controller):
    path = "/admin/prompts"
    tags = ["admin"]  # noqa: RUF012  (Litestar reads a class attribute)
    before_request = staticmethod(check_path_ids)

    @post("/", status_code=200, summary="Create a prompt template, or a new version of one")
    async def create(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        prompts: NamedDependency[PromptService],
    ) -> PromptObject:
        body = codec.decode(await request.body(), CreatePromptRequest)
        return await prompts.create(caller.project_id, body)

    @get("/", summary="List prompt templates (newest versions)")
    async def list_prompts(
        self, caller: NamedDependency[Caller], prompts: NamedDependency[PromptService]
    ) -> PromptList:
        return await prompts.list(caller.project_id)

    @get("/{prompt_id:str}", summary="Retrieve a prompt template")
    async def retrieve(
        self,
        prompt_id: FromPath[str],
        caller: NamedDependency[Caller],
        prompts: NamedDependency[PromptService],
        version: FromQuery[str | None] = None,
    ) -> PromptObject:
        number = None if version is None else int_param(version, "version", 1, minimum=1)
        return await prompts.retrieve(caller.project_id, prompt_id, number)

    @delete("/{prompt_id:str}", status_code=200, summary="Delete a prompt template")
    async def remove(
        self,
        prompt_id: FromPath[str],
        caller: NamedDependency[Caller],
        prompts: NamedDependency[PromptService],
    ) -> PromptDeleted:
        return await prompts.delete(caller.project_id, prompt_id)
