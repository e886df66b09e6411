"""Keys of the signed-in project: list, create (the secret shown once), revoke."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.console.actions import ConsoleActions
from app.console.pages import is_htmx, navigate, page
from app.console.session import ConsoleSession

AnyRequest = Request[Any, Any, Any]


class KeysController(Controller):
    path = "/keys"

    @get("/")
    async def list_keys(
        self,
        console_session: NamedDependency[ConsoleSession],
        console_actions: NamedDependency[ConsoleActions],
    ) -> Template:
        keys = await console_actions.keys(console_session.caller)
        return page("keys.html", console_session, keys=keys, created=None, nav="keys")

    @post("/", status_code=200)
    async def create(
        self,
        request: AnyRequest,
        console_session: NamedDependency[ConsoleSession],
        console_actions: NamedDependency[ConsoleActions],
    ) -> Template:
        form = await request.form()
        name = form.get("name")
        info, secret = await console_actions.create_key(
            console_session.caller, name if isinstance(name, str) else ""
        )
        keys = await console_actions.keys(console_session.caller)
        # The secret is in this one answer's body only (no-store, never a URL or a log).
        return page(
            "keys.html",
            console_session,
            keys=keys,
            created={"info": info, "secret": secret},
            nav="keys",
        )

    @post("/{key_id:str}/revoke", status_code=200)
    async def revoke(
        self,
        request: AnyRequest,
        key_id: FromPath[str],
        console_session: NamedDependency[ConsoleSession],
        console_actions: NamedDependency[ConsoleActions],
    ) -> Response[Any]:
        await console_actions.revoke_key(console_session.caller, key_id)
        if key_id == console_session.key_id:
            # The key this session stands on is gone: so is the session (see access.py).
            return navigate(request, "/console/sign-in")
        if not is_htmx(request):
            return navigate(request, "/console/keys")
        keys = await console_actions.keys(console_session.caller)
        return page("keys/_table.html", console_session, keys=keys, nav="keys")
