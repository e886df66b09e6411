"""Test harness pieces: a throwaway Postgres database, Rapport served on a loopback port.

Rapport runs in a background thread under a real uvicorn server, so the official `openai` SDK
talks to it over a real socket (an in-process ASGI transport would buffer SSE and skip the
HTTP layer); being in-process keeps its log records visible to pytest's caplog.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import asyncpg
import uvicorn
from sqlalchemy import event

from app.asgi import create_app
from app.cli import migrate
from app.config import Settings

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, migrated database on the local server; dropped afterwards.

    RAPPORT_TEST_DATABASE_URL names the admin connection (a libpq URL). When none is given and
    no local server answers, testcontainers is the fallback (it needs a Docker engine).
    """
    admin_url = os.environ.get("RAPPORT_TEST_DATABASE_URL")
    if admin_url is None and not _reachable(DEFAULT_ADMIN_URL):
        with _container_database() as url:
            migrate(url, "head")
            yield url
        return
    admin_url = admin_url or DEFAULT_ADMIN_URL
    name = f"rapport_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    try:
        migrate(url, "head")
        yield url
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _reachable(url: str) -> bool:
    try:
        asyncio.run(_admin(url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError):
        return False
    return True


@contextmanager
def _container_database() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer  # optional: needs Docker

    with PostgresContainer("postgres:15", driver="asyncpg") as container:
        yield container.get_connection_url()


class StatementCounter:
    def __init__(self, sync_engine: Any) -> None:
        self._engine = sync_engine
        self.statements: list[str] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> Self:
        event.listen(self._engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self._engine, "before_cursor_execute", self._record)

    @property
    def reads(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]


class RapportServer:
    """Rapport on 127.0.0.1:<free port>, in a thread with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.app = config.app
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def count_statements(self) -> StatementCounter:
        """Counts the SQL statements this server runs while the counter is open."""
        return StatementCounter(self.app.state.runtime.engine.sync_engine)

    def start(self) -> RapportServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("Rapport did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
