"""Opt-in: the real Codex CLI (`@openai/codex`, from npm) against Rapport and the test upstream.

Set RAPPORT_SLOW_TESTS=1 (needs `npm` and the npm registry; the install takes a few seconds and
~450 MB in a temp folder). Codex gets a private CODEX_HOME whose config.toml points a custom
provider at Rapport with `wire_api = "responses"`, and answers one plain prompt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import ModelRoute
from tests.conftest import Project, server_settings
from tests.harness import RapportServer
from tests.upstream import TestUpstream

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("RAPPORT_SLOW_TESTS") != "1", reason="set RAPPORT_SLOW_TESTS=1"
    ),
]

CODEX_VERSION = "0.171.0"
MODEL = "codex-test"


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


def test_codex_exec_answers_through_rapport(
    codex: Path, gateway: RapportServer, project: Project, upstream: TestUpstream, tmp_path: Path
) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{MODEL}"\n'
        'model_provider = "rapport"\n'
        "[model_providers.rapport]\n"
        'name = "Rapport"\n'
        f'base_url = "{gateway.base_url}"\n'
        'env_key = "RAPPORT_TEST_KEY"\n'
        'wire_api = "responses"\n'
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "CODEX_HOME": str(home),
        "RAPPORT_TEST_KEY": project.secret,
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [str(codex), "exec", "--skip-git-repo-check", "Say hello to Rapport"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=180,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert "echo:" in done.stdout + done.stderr
    assert "Say hello to Rapport" in done.stdout + done.stderr
    chats = [r for r in upstream.requests if r.path == "/v1/chat/completions"]
    assert chats, "Codex's request never reached the upstream"
    assert "client_metadata" not in str(chats[-1].body)
    # Codex's own namespaced tools (`multi_agent_v1`) arrive flattened, one name each.
    names = [tool["function"]["name"] for tool in chats[-1].body.get("tools", [])]
    assert len(names) == len(set(names))
