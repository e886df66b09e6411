"""Opt-in: the real Codex CLI (`@openai/codex`, from npm) against Rapport and the test upstream.

Set RAPPORT_SLOW_TESTS=1 (needs `npm` and the npm registry; the install takes a few seconds and
~450 MB in a temp folder). Codex gets a private CODEX_HOME whose config.toml points a custom
provider at Rapport with `wire_api = "responses"` — over HTTP, or with `supports_websockets`
over one WebSocket — and answers a plain prompt, then runs its own command tool (`exec_command`)
for the test upstream and answers with what the command printed.

Which transport a turn took is read from Rapport's access log: every HTTP request has a line
(`POST /v1/responses`), and every create on a socket has one of its own (method `WEBSOCKET`).
Codex falls back to HTTP when a socket fails, so a WebSocket run must show no POST at all.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app.config import ModelRoute
from tests.conftest import Project, server_settings
from tests.e2e.test_observability import access_lines
from tests.harness import RapportServer
from tests.upstream import RecordedRequest, TestUpstream

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("RAPPORT_SLOW_TESTS") != "1", reason="set RAPPORT_SLOW_TESTS=1"
    ),
]

CODEX_VERSION = "0.171.0"
MODEL = "codex-test"
ROUTE = "/v1/responses"
TRANSPORTS = ["http", "websocket"]


class CodexRun(msgspec.Struct):
    """One `codex exec`: what it printed, its last message, and what Rapport saw meanwhile."""

    returncode: int
    output: str  # stdout and stderr
    last_message: str
    workdir: Path
    chats: list[RecordedRequest]  # the upstream's model calls
    lines: list[dict[str, Any]]  # Rapport's access lines for the Responses route


RunCodex = Callable[[str, str], CodexRun]


@pytest.fixture(scope="module")
def codex(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    prefix = tmp_path_factory.mktemp("codex-cli")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
         f"@openai/codex@{CODEX_VERSION}"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return prefix / "node_modules" / ".bin" / "codex"


@pytest.fixture(scope="module")
def gateway(database_url: str, upstream: TestUpstream) -> Iterator[RapportServer]:
    # Codex always offers web_search and image generation, which only a hosted-tool loop runs.
    route = ModelRoute(
        name=MODEL,
        base_url=upstream.base_url,
        timeout_seconds=30,
        drop_hosted_tools=("web_search", "image_generation"),
    )
    server = RapportServer(server_settings(database_url, upstream, routes=(route,))).start()
    yield server
    server.stop()


@pytest.fixture
def run_codex(
    codex: Path,
    gateway: RapportServer,
    project: Project,
    upstream: TestUpstream,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> RunCodex:
    """Runs `codex exec PROMPT` over a transport, commands allowed without prompts, in an
    empty working folder of its own."""
    caplog.set_level(logging.INFO, logger="rapport.access")

    def run(prompt: str, transport: str) -> CodexRun:
        home = tmp_path / f"codex-home-{transport}"
        home.mkdir()
        (home / "config.toml").write_text(
            f'model = "{MODEL}"\n'
            'model_provider = "rapport"\n'
            "[model_providers.rapport]\n"
            'name = "Rapport"\n'
            f'base_url = "{gateway.base_url}"\n'
            'env_key = "RAPPORT_TEST_KEY"\n'
            'wire_api = "responses"\n'
            f"supports_websockets = {'true' if transport == 'websocket' else 'false'}\n"
        )
        workdir = tmp_path / f"work-{transport}"
        workdir.mkdir()
        last = tmp_path / f"last-{transport}.txt"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "CODEX_HOME": str(home),
            "RAPPORT_TEST_KEY": project.secret,
            "NO_COLOR": "1",
        }
        caplog.clear()
        upstream.clear()
        done = subprocess.run(
            [str(codex), "exec", "--skip-git-repo-check",
             "--dangerously-bypass-approvals-and-sandbox", "--output-last-message", str(last),
             prompt],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=180,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        return CodexRun(
            returncode=done.returncode,
            output=done.stdout + done.stderr,
            last_message=last.read_text() if last.exists() else "",
            workdir=workdir,
            chats=[r for r in upstream.requests if r.path == "/v1/chat/completions"],
            lines=[line for line in access_lines(caplog) if line["route"] == ROUTE],
        )

    return run


def check_transport(run: CodexRun, transport: str) -> None:
    """Every model call came through a create on the transport asked for, and none on the
    other: Codex did not fall back from the socket to HTTP."""
    assert run.chats, "Codex's request never reached the upstream"
    methods = {line["method"] for line in run.lines}
    assert methods == ({"WEBSOCKET"} if transport == "websocket" else {"POST"}), run.lines
    assert [line["status"] for line in run.lines] == [200] * len(run.lines), run.lines
    generating = [line for line in run.lines if line.get("upstream_ms") is not None]
    assert len(generating) == len(run.chats)
    if transport == "websocket":
        # Codex opens its session with a warm-up (`generate: false`): one create, no model call.
        assert len(run.lines) == len(run.chats) + 1, run.lines
    for chat in run.chats:
        assert "client_metadata" not in str(chat.body)
        # Codex's own namespaced tools (`multi_agent_v1`) arrive flattened, one name each.
        names = [tool["function"]["name"] for tool in chat.body.get("tools", [])]
        assert len(names) == len(set(names))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_codex_exec_answers_through_rapport(run_codex: RunCodex, transport: str) -> None:
    run = run_codex("Say hello to Rapport", transport)
    assert run.returncode == 0, run.output[-4000:]
    assert run.last_message.strip() == "echo: Say hello to Rapport"
    check_transport(run, transport)
    assert len(run.chats) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_codex_runs_its_command_tool_through_rapport(run_codex: RunCodex, transport: str) -> None:
    """The upstream calls Codex's `exec_command` with a command whose output appears nowhere
    in the prompt (the shell turns a hex number into decimal); Codex runs it in its working
    folder, sends the output back, and the answer it prints is that output."""
    number = uuid.uuid4().hex[:12]
    marker = f"rapport-{int(number, 16)}"
    command = f"printf rapport-%d 0x{number} | tee marker.txt"
    prompt = f'Run it [tool:exec_command:{{"cmd": "{command}"}}]'
    assert marker not in prompt
    run = run_codex(prompt, transport)
    assert run.returncode == 0, run.output[-4000:]
    assert (run.workdir / "marker.txt").read_text() == marker  # it really ran, there
    check_transport(run, transport)
    asked, answered = run.chats
    tools = {tool["function"]["name"] for tool in asked.body["tools"]}
    assert "exec_command" in tools
    *_, call, result = answered.body["messages"]
    [tool_call] = call["tool_calls"]
    assert tool_call["function"]["name"] == "exec_command"
    assert (result["role"], result["tool_call_id"]) == ("tool", tool_call["id"])
    assert marker in result["content"]
    assert run.last_message.startswith("done: ")
    assert marker in run.last_message
