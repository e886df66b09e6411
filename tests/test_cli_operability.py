"""The first run and the command line's manners: help, version, one-sentence failures, the
start-up banner, the access log of a real `rapport serve`, and the quick start run twice."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from app.cli import main
from tests.conftest import UPSTREAM_KEY
from tests.harness import free_port
from tests.test_cli import (
    TIMEOUT,
    CreatedKey,
    blank_postgres_database,
    cli_env,
    rapport_cli,
    wait_for_health,
)
from tests.upstream import TestUpstream

LEAF_COMMANDS = [
    ["serve"],
    ["worker"],
    ["db", "upgrade"],
    ["db", "downgrade"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["responses", "list"],
    ["responses", "show"],
    ["conversations", "show"],
]


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_every_help_has_descriptions_defaults_and_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    top = help_of(capsys)
    for name in ("RAPPORT_DATABASE_URL", "RAPPORT_LOG_FORMAT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        assert name in top
    for command in LEAF_COMMANDS:
        text = help_of(capsys, *command)
        assert "environment:" in text, command
        assert "RAPPORT_DATABASE_URL" in text, command
    serve = help_of(capsys, "serve")
    assert "port to listen on (default: 8000)" in serve
    assert "address to listen on (default: 127.0.0.1)" in serve
    assert "(default: 16)" in help_of(capsys, "worker")
    assert "--new-project" in help_of(capsys, "keys", "create")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == "rapport 0.1.0"


READ_ONLY = [
    ["keys", "list"],
    ["keys", "revoke", "key_x"],
    ["responses", "list"],
    ["responses", "show", "resp_x"],
    ["conversations", "show", "conv_x"],
    ["prompts", "list", "--project", "proj_x"],
    ["db", "downgrade", "base"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_make_no_database(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    assert main(command) == 2
    error = capsys.readouterr().err
    assert f"no database at {tmp_path / 'rapport.db'}" in error
    assert "RAPPORT_DATABASE_URL" in error
    assert not (tmp_path / "rapport.db").exists()


def test_an_unmigrated_postgres_names_the_upgrade(tmp_path: Path) -> None:
    with blank_postgres_database() as (url, _):
        env = cli_env(RAPPORT_DATABASE_URL=url)
        for command in (["serve", "--port", str(free_port())], ["keys", "create", "--name", "x"]):
            done = rapport_cli(*command, env=env, cwd=tmp_path, check=False)
            assert done.returncode in (1, 2), command
            assert "rapport db upgrade" in done.stderr, command
            assert "Traceback" not in done.stderr + done.stdout, command
            assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


def test_an_unreachable_database_is_one_sentence(tmp_path: Path) -> None:
    env = cli_env(RAPPORT_DATABASE_URL="postgresql+asyncpg://rapport:hunter2@127.0.0.1:9/x")
    done = rapport_cli("keys", "list", env=env, cwd=tmp_path, check=False)
    assert done.returncode == 1
    assert "cannot reach the database at postgresql+asyncpg://rapport:***@127.0.0.1:9/x" in (
        done.stderr
    )
    assert "hunter2" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = rapport_cli("serve", "--port", str(port), env=cli_env(), cwd=tmp_path, check=False)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_settings_are_one_sentence(tmp_path: Path) -> None:
    done = rapport_cli("keys", "list", env=cli_env(RAPPORT_LOG_FORMAT="xml"), check=False)
    assert done.returncode == 2
    assert "RAPPORT_LOG_FORMAT must be 'json' or 'console'" in done.stderr


def rapport_command() -> list[str]:
    """The installed console script the README runs, else the same entry point by module."""
    script = Path(sys.executable).with_name("rapport")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app"]


@contextmanager
def serving(env: dict[str, str], cwd: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    log = cwd / "serve.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*rapport_command(), "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_health(f"http://127.0.0.1:{port}", process, log)
            yield process
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def json_lines(log: Path) -> list[dict[str, object]]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        assert line.startswith("{"), f"not a JSON line: {line!r}"
        lines.append(json.loads(line))
    return lines


def test_banner_warnings_and_access_log(tmp_path: Path) -> None:
    """An upstream with no key that does not answer: said at start-up, and named by the 502."""
    env = cli_env(RAPPORT_UPSTREAM_BASE_URL="http://user:pw@rapport-upstream.invalid/v1")
    key = CreatedKey(rapport_cli("keys", "create", "--name", "me", env=env, cwd=tmp_path).stdout)
    port = free_port()
    with serving(env, tmp_path, port):
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key.secret, max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.responses.create(model="gpt-4o-mini", input="a body no log may hold")
        assert "http://rapport-upstream.invalid/v1/chat/completions" in caught.value.message
        assert "RAPPORT_UPSTREAM_BASE_URL" in caught.value.message
        httpx.get(f"http://127.0.0.1:{port}/v1/responses", headers={"authorization": "Bearer x"})
    text = (tmp_path / "serve.log").read_text()
    lines = json_lines(tmp_path / "serve.log")
    banner = next(line for line in lines if str(line["msg"]).startswith("Rapport 0.1.0"))
    assert banner["listen"] == f"http://127.0.0.1:{port}"
    assert banner["database"] == f"sqlite {tmp_path / 'rapport.db'}"
    assert str(banner["queue"]).startswith("in-process")
    assert banner["routes"] == [
        "* → http://rapport-upstream.invalid/v1 (catch-all, RAPPORT_UPSTREAM_BASE_URL)"
    ]
    warnings = [str(line["msg"]) for line in lines if line["level"] == "warning"]
    assert any("has no key" in warning for warning in warnings), warnings
    assert any("does not answer" in warning for warning in warnings), warnings
    access = [line for line in lines if line["logger"] == "rapport.access"]
    failed = next(line for line in access if line["status"] == 502)
    assert failed["route"] == "/v1/responses"
    assert failed["project_id"] == key.project_id
    assert str(failed["response_id"]).startswith("resp_")
    assert any(line["status"] in (401, 405) for line in access)
    assert sum(1 for line in lines if line["logger"] == "alembic.runtime.migration") == 0
    for secret in (key.secret, "a body no log may hold", "pw@", "Traceback"):
        assert secret not in text


def test_quick_start_twice(tmp_path: Path, upstream: TestUpstream) -> None:
    """The README's two commands, run again after Ctrl-C: the key is new, the project is not,
    so the second run's key still sees the first run's response."""
    env = cli_env(
        RAPPORT_UPSTREAM_BASE_URL=upstream.base_url, RAPPORT_UPSTREAM_API_KEY=UPSTREAM_KEY
    )

    def keys_create() -> tuple[CreatedKey, str]:
        command = [*rapport_command(), "keys", "create", "--name", "me"]
        done = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, check=True
        )
        return CreatedKey(done.stdout), done.stdout

    first, first_out = keys_create()
    assert "a new project" in first_out
    port = free_port()
    with serving(env, tmp_path, port):
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=first.secret)
        created = client.responses.create(model="test-model", input="remember me")
        assert created.output_text == "echo: remember me"
        conversation = client.conversations.create(
            items=[{"type": "message", "role": "user", "content": "kept in order"}]
        )

    second, second_out = keys_create()
    assert second.project_id == first.project_id
    assert second.secret != first.secret
    assert "default project" in second_out
    with serving(env, tmp_path, port):
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=second.secret)
        assert client.responses.retrieve(created.id).output_text == "echo: remember me"
        wrong = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-gateway-old")
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.responses.retrieve(created.id)
        assert "rapport keys create" in caught.value.message

    shown = json.loads(rapport_cli("responses", "show", created.id, env=env, cwd=tmp_path).stdout)
    assert shown["project_id"] == first.project_id
    assert shown["response"]["output"][0]["content"][0]["text"] == "echo: remember me"
    listed = json.loads(rapport_cli("responses", "list", env=env, cwd=tmp_path).stdout)
    assert [row["id"] for row in listed["data"]] == [created.id]
    talk = rapport_cli("conversations", "show", conversation.id, env=env, cwd=tmp_path)
    shown = json.loads(talk.stdout)
    assert shown["conversation"]["id"] == conversation.id
    assert shown["items"][0]["content"][0]["text"] == "kept in order"
    missing = rapport_cli("responses", "show", "resp_nope", env=env, cwd=tmp_path, check=False)
    assert missing.returncode == 2
    assert "no response with id resp_nope" in missing.stderr
