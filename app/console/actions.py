"""The console's writes: cancel a background response, create and revoke keys of the project.

Cancel goes through `BackgroundResponses.cancel`, the very service behind
`POST /v1/responses/{id}/cancel`, so the console can do nothing the API would refuse. A new
key's secret is returned once, to be shown once; only its sha256 is stored (`app/auth.py`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Caller, KeyInfo, create_key
from app.console.queries import keys as key_queries
from app.console.views import KeyView
from app.db.session import unit_of_work
from app.errors import InvalidRequest, NotFound
from app.responses.background import BackgroundResponses
from app.wire.responses import Response

MAX_KEY_NAME = 200


class ConsoleActions:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], background: BackgroundResponses
    ) -> None:
        self._sessions = sessions
        self._background = background

    async def cancel(self, caller: Caller, response_id: str) -> Response:
        return await self._background.cancel(caller, response_id)

    async def keys(self, caller: Caller) -> list[KeyView]:
        async with unit_of_work(self._sessions) as session:
            rows = await key_queries.list_keys(session, caller.project_id)
        return [
            KeyView(
                id=row.id,
                name=row.name,
                display=row.display_prefix,
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                revoked_at=row.revoked_at,
            )
            for row in rows
        ]

    async def create_key(self, caller: Caller, name: str) -> tuple[KeyInfo, str]:
        name = name.strip()
        if not name or len(name) > MAX_KEY_NAME:
            raise InvalidRequest(f"A key needs a name of 1 to {MAX_KEY_NAME} characters.")
        return await create_key(self._sessions, name, caller.project_id)

    async def revoke_key(self, caller: Caller, key_id: str) -> bool:
        """True when revoked now; False when it was revoked already. Another project's key is
        a 404, as if it did not exist."""
        async with unit_of_work(self._sessions) as session:
            if not await key_queries.exists(session, caller.project_id, key_id):
                raise NotFound(f"Key with id '{key_id}' not found.")
            return await key_queries.revoke(session, caller.project_id, key_id)
