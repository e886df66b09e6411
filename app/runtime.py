"""Process resources, built once and the same way by the API server and the worker.

The engine and its pool, the sessionmaker, one httpx.AsyncClient for every upstream call and
the provider registry. Nothing here is request-scoped, so a streaming body that outlives its
request can still use it.
"""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.session import create_engine, create_sessionmaker
from app.providers.registry import ProviderRegistry


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_engine(settings.database_url)
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(self.engine)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
            ),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
            transport=httpx.AsyncHTTPTransport(retries=2),
            follow_redirects=False,
        )
        self.providers = ProviderRegistry(settings, self.http)

    async def close(self) -> None:
        await self.http.aclose()
        await self.engine.dispose()
