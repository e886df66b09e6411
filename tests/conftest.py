"""Session fixtures: Postgres database, test upstream, Rapport servers; per-test projects."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth import create_key
from app.cli import migrate
from app.config import ModelRoute, Settings
from app.db.session import create_engine, create_sessionmaker
from tests.harness import RapportServer, postgres_database
from tests.upstream import TestUpstream

UPSTREAM_KEY = "sk-upstream-secret-never-shown-0123456789"
ROUTE_KEY = "sk-route-secret-never-shown-9876543210"
ROUTE_KEY_ENV = "RAPPORT_TEST_ROUTE_KEY"


class Project(msgspec.Struct):
    project_id: str
    key_id: str
    secret: str


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def upstream() -> Iterator[TestUpstream]:
    server = TestUpstream()
    server.start()
    yield server
    server.stop()


def server_settings(database_url: str, upstream: TestUpstream, **overrides: Any) -> Settings:
    """Settings as a models file would give them: two named routes, then the catch-all."""
    os.environ[ROUTE_KEY_ENV] = ROUTE_KEY
    values: dict[str, Any] = {
        "database_url": database_url,
        "upstream_base_url": upstream.base_url,
        "upstream_api_key": UPSTREAM_KEY,
        "upstream_timeout_seconds": 2.0,
        "routes": (
            ModelRoute(name="dead-*", base_url="http://127.0.0.1:9/v1", timeout_seconds=2.0),
            ModelRoute(
                name="renamed",
                base_url=upstream.base_url,
                api_key_env=ROUTE_KEY_ENV,
                upstream_model="upstream-name",
                max_tokens_param="max_tokens",
                timeout_seconds=2.0,
            ),
        ),
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def rapport_with_routes(
    database_url: str, upstream: TestUpstream, **routes: dict[str, Any]
) -> Iterator[RapportServer]:
    """A Rapport of its own whose models file has these routes (name → ModelRoute fields),
    each to the test upstream unless its fields name another `base_url`."""
    models = tuple(
        ModelRoute(name=name, **{"base_url": upstream.base_url, "timeout_seconds": 5.0, **fields})
        for name, fields in routes.items()
    )
    server = RapportServer(server_settings(database_url, upstream, routes=models)).start()
    try:
        yield server
    finally:
        server.stop()


def words(prefix: str, count: int) -> str:
    """`count` distinct words: `prefix0 prefix1 …` (each a few tokens)."""
    return " ".join(f"{prefix}{n}" for n in range(count))


@pytest.fixture(scope="session")
def rapport(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    server = RapportServer(server_settings(database_url, upstream)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "rapport.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate(url, "head")
    return url


@pytest.fixture(scope="session")
def rapport_sqlite(sqlite_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    server = RapportServer(server_settings(sqlite_url, upstream)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture(params=["postgres", "sqlite"])
async def store(
    request: pytest.FixtureRequest, sessions: async_sessionmaker[AsyncSession], sqlite_url: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on each of the two databases in turn: the local Postgres, then a migrated
    SQLite file (for repository code that takes another path on each)."""
    if request.param == "postgres":
        yield sessions
        return
    engine = create_engine(sqlite_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def new_project(sessions: async_sessionmaker[AsyncSession]) -> Project:
    info, secret = await create_key(sessions, "test")
    return Project(info.project_id, info.id, secret)


@pytest.fixture
async def project(sessions: async_sessionmaker[AsyncSession]) -> Project:
    """Each test works in a project of its own: isolation without truncating tables."""
    return await new_project(sessions)


@pytest.fixture
async def other_project(sessions: async_sessionmaker[AsyncSession]) -> Project:
    return await new_project(sessions)


def sdk(server: RapportServer, project: Project) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key=project.secret, max_retries=0)


@pytest.fixture
def client(rapport: RapportServer, project: Project) -> AsyncOpenAI:
    return sdk(rapport, project)


@pytest.fixture
def other_client(rapport: RapportServer, other_project: Project) -> AsyncOpenAI:
    return sdk(rapport, other_project)


@pytest.fixture(autouse=True)
def _fresh_upstream_log(request: pytest.FixtureRequest) -> None:
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").clear()


__all__ = ["ROUTE_KEY", "UPSTREAM_KEY", "Project", "asyncio"]
