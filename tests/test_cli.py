"""The `rapport` command line as real subprocesses: migrations, keys, and `serve`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import openai
import pytest
from openai import OpenAI

from app.auth import CACHE_SECONDS
from tests.conftest import UPSTREAM_KEY
from tests.harness import DEFAULT_ADMIN_URL, RapportServer, free_port
from tests.upstream import TestUpstream

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60
TABLES = {"responses", "items", "api_keys", "conversations", "conversation_items"}
CREATED = re.compile(
    r"^created key (?P<key_id>key_\S+) \((?P<name>.*)\) in project (?P<project>\S+)$"
)

TableLister = Callable[[], set[str]]


def cli_env(**values: str) -> dict[str, str]:
    """The parent's environment minus every RAPPORT_* setting, so only the test's values count."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RAPPORT_") and key != "OPENAI_API_KEY"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(values)
    return env


def rapport_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`python -m app …` in a child process: the same entry point as the console script."""
    done = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"rapport {' '.join(args)}: {done.stderr}"
    return done


class CreatedKey:
    """What `keys create` printed: the summary line parsed, and the secret from the last line."""

    def __init__(self, stdout: str) -> None:
        lines = stdout.strip().splitlines()
        summary = CREATED.match(lines[0])
        assert summary is not None, stdout
        self.key_id = summary["key_id"]
        self.project_id = summary["project"]
        self.secret = lines[-1]


def create_key(env: dict[str, str], *extra: str, cwd: Path | None = None) -> CreatedKey:
    return CreatedKey(rapport_cli("keys", "create", *extra, env=env, cwd=cwd).stdout)


def sqlite_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


async def _postgres(url: str, statement: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(statement)
    finally:
        await connection.close()


def postgres_tables(libpq_url: str) -> set[str]:
    rows = asyncio.run(
        _postgres(libpq_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    )
    return {row["tablename"] for row in rows}


@contextmanager
def blank_postgres_database() -> Iterator[tuple[str, str]]:
    """An empty, unmigrated database (the CLI must build the schema itself); dropped after."""
    admin_url = os.environ.get("RAPPORT_TEST_DATABASE_URL") or DEFAULT_ADMIN_URL
    try:
        asyncio.run(_postgres(admin_url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError):
        pytest.skip("no Postgres server answers at the admin URL")
    name = f"rapport_cli_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres(admin_url, f'CREATE DATABASE "{name}"'))
    libpq_url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        yield libpq_url.replace("postgresql://", "postgresql+asyncpg://", 1), libpq_url
    finally:
        asyncio.run(_postgres(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def blank_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, TableLister]]:
    """Both backends Rapport supports, each with a way to read back its table names."""
    if request.param == "sqlite":
        path = tmp_path / "round-trip.db"
        yield f"sqlite+aiosqlite:///{path}", lambda: sqlite_tables(path) if path.exists() else set()
        return
    with blank_postgres_database() as (url, libpq_url):
        yield url, lambda: postgres_tables(libpq_url)


def test_migrations_round_trip(blank_database: tuple[str, TableLister]) -> None:
    """upgrade → downgrade base → upgrade must work, or a bad release cannot be rolled back."""
    url, tables = blank_database
    env = cli_env(RAPPORT_DATABASE_URL=url)

    assert "database at head" in rapport_cli("db", "upgrade", env=env).stdout
    assert tables() >= TABLES

    assert "database at base" in rapport_cli("db", "downgrade", "base", env=env).stdout
    assert not TABLES & tables()

    rapport_cli("db", "upgrade", env=env)
    assert tables() >= TABLES
    # The schema is usable, not just present: a key can be minted in it.
    assert create_key(env, "--name", "after-round-trip").secret.startswith("sk-gateway-")


def test_downgrade_needs_a_revision() -> None:
    """`db downgrade` without REV is a usage error, so nobody drops tables by accident."""
    done = rapport_cli("db", "downgrade", env=cli_env(), check=False)
    assert done.returncode == 2
    assert "revision" in done.stderr


def key_works(client: OpenAI, response_id: str) -> bool:
    """True while the server still accepts the client's key (it caches keys for a few seconds)."""
    try:
        client.responses.retrieve(response_id)
    except openai.AuthenticationError:
        return False
    return True


def test_keys_create_list_revoke(
    database_url: str, rapport: RapportServer, upstream: TestUpstream
) -> None:
    """The whole key life cycle against the test server's own database.

    The CLI writes to the same Postgres database the `rapport` server reads, so the keys it
    mints are the ones the server accepts, and a revoke is seen by the live server.
    """
    env = cli_env(RAPPORT_DATABASE_URL=database_url)
    first = create_key(env, "--name", "cli-first", "--new-project")
    assert first.secret.startswith("sk-gateway-")
    second = create_key(env, "--name", "cli-second", "--project", first.project_id)
    assert second.secret.startswith("sk-gateway-")
    assert second.project_id == first.project_id
    assert second.key_id != first.key_id

    listing = rapport_cli("keys", "list", env=env).stdout
    assert first.secret not in listing
    assert second.secret not in listing
    rows = {line.split("\t")[0]: line.split("\t") for line in listing.splitlines()}
    for key, name in ((first, "cli-first"), (second, "cli-second")):
        assert rows[key.key_id][1:3] == [first.project_id, name]
        assert rows[key.key_id][4] == "active"

    first_client = OpenAI(base_url=rapport.base_url, api_key=first.secret, max_retries=0)
    second_client = OpenAI(base_url=rapport.base_url, api_key=second.secret, max_retries=0)
    created = first_client.responses.create(model="test-model", input="minted by the cli")
    assert created.output_text == "echo: minted by the cli"
    # One project, two keys: the second key sees what the first one stored.
    assert second_client.responses.retrieve(created.id).id == created.id

    revoked = rapport_cli("keys", "revoke", first.key_id, env=env)
    assert first.key_id in revoked.stdout

    # The server caches a resolved key for CACHE_SECONDS; the revoke must win within that.
    deadline = time.monotonic() + CACHE_SECONDS + 5
    while key_works(first_client, created.id):
        assert time.monotonic() < deadline, "a revoked key still works"
        time.sleep(0.25)
    with pytest.raises(openai.AuthenticationError) as caught:
        first_client.responses.retrieve(created.id)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert first.secret not in str(caught.value.body)
    assert second_client.responses.retrieve(created.id).id == created.id

    relisted = rapport_cli("keys", "list", env=env).stdout
    revoked_row = next(line for line in relisted.splitlines() if line.startswith(first.key_id))
    assert "\trevoked " in revoked_row

    again = rapport_cli("keys", "revoke", first.key_id, env=env, check=False)
    assert again.returncode == 1
    assert first.key_id in again.stderr
    unknown = rapport_cli("keys", "revoke", "key_does_not_exist", env=env, check=False)
    assert unknown.returncode == 1


def test_keys_create_needs_a_name() -> None:
    """`--name` is required: an unnamed key cannot be told apart in `keys list` later."""
    done = rapport_cli("keys", "create", env=cli_env(), check=False)
    assert done.returncode == 2
    assert "--name" in done.stderr


def test_embedded_default_creates_its_database(tmp_path: Path) -> None:
    """With no RAPPORT_DATABASE_URL the first command builds ./rapport.db, migrated, by itself."""
    env = cli_env()
    assert not (tmp_path / "rapport.db").exists()
    key = create_key(env, "--name", "local", cwd=tmp_path)
    assert key.secret.startswith("sk-gateway-")
    assert (tmp_path / "rapport.db").is_file()
    assert sqlite_tables(tmp_path / "rapport.db") >= TABLES
    listing = rapport_cli("keys", "list", env=env, cwd=tmp_path).stdout
    assert key.key_id in listing
    assert key.secret not in listing


def test_console_script_runs() -> None:
    """The installed `rapport` script is wired to the same main as `python -m app`."""
    script = Path(sys.executable).with_name("rapport")
    if not script.exists():
        pytest.skip("the rapport console script is not installed next to this interpreter")
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0
    for command in ("serve", "db", "keys"):
        assert command in done.stdout


@contextmanager
def serving(env: dict[str, str], cwd: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`rapport serve` as a child; always stopped, and killed if SIGTERM is not enough."""
    log = cwd / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=TIMEOUT)


def wait_for_health(base: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    """Poll /health until the server answers; fail fast if the process dies."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            return httpx.get(f"{base}/health", timeout=2)
        except httpx.TransportError:
            assert time.monotonic() < deadline, "rapport serve did not come up"
            time.sleep(0.1)


def test_serve_on_embedded_default(tmp_path: Path, upstream: TestUpstream) -> None:
    """The zero-configuration path a new user takes: mint a key, serve, call with the SDK."""
    env = cli_env(
        RAPPORT_UPSTREAM_BASE_URL=upstream.base_url,
        RAPPORT_UPSTREAM_API_KEY=UPSTREAM_KEY,
    )
    key = create_key(env, "--name", "serve-test", cwd=tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    with serving(env, tmp_path, port) as process:
        health = wait_for_health(base, process, tmp_path / "serve.log")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        ready = httpx.get(f"{base}/ready", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"

        client = OpenAI(base_url=f"{base}/v1", api_key=key.secret, max_retries=0, timeout=30)
        created = client.responses.create(model="test-model", input="hello from the cli")
        assert created.status == "completed"
        assert created.output_text == "echo: hello from the cli"
        sent = upstream.last_request()
        assert sent.headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"

        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status says why.
        assert process.wait(timeout=TIMEOUT) in (0, -signal.SIGTERM)
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    assert key.secret not in log
    assert UPSTREAM_KEY not in log
