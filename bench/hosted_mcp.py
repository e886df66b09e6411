"""Hosted MCP calls through Rapport: the time Rapport adds to a call over the MCP server's own
time, and turns per second with one MCP call per turn.

Runs the test upstream, the test MCP server (the `mcp` SDK's own, streamable HTTP) and
`rapport serve` as processes of their own on loopback, then measures, interleaved by round:
- direct: an MCP client of our own (Rapport's, `app/tools/mcp.py`) connecting, listing and
  calling `add` — what one response's MCP work costs, session set-up included (not its close,
  which Rapport does after answering);
- plain: a create whose model answers at once (one model call);
- hosted: a create whose model calls `add` and answers with its result (list, call, two model
  calls);
- upstream: one chat call straight to the upstream (the second model call's own cost).
Added time per hosted call = hosted - plain - upstream - direct (medians).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from latency import Stack, free_port, rapport_executable, run_cli, wait_ready
from shared import DEFAULT_ADMIN_URL, create_database, drop_database, machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.tools.base import ItemEvents
from app.tools.mcp import McpServer
from app.wire.hosted_tools import McpTool

CALL = '[tool:add:{"a": 2, "b": 3}]'


async def direct_mcp(url: str) -> float:
    spec = McpTool(type="mcp", server_label="calc", server_url=url, require_approval="never")
    server = McpServer(spec, 30)

    async def add_item(item: dict, fill: object = None) -> None:
        if fill is not None:
            await fill(ItemEvents(None, dict, item["id"], 0))  # type: ignore[operator]

    started = time.perf_counter()
    await server.prepare([], add_item)
    opened = server.open("add", '{"a": 2, "b": 3}')
    result = await server.run(opened.item, ItemEvents(None, dict, opened.item["id"], 1))
    elapsed = time.perf_counter() - started  # Rapport closes the session after answering
    await server.aclose()
    if result != "5":
        raise RuntimeError(f"unexpected result {result!r}")
    return elapsed


async def timed_post(client: httpx.AsyncClient, url: str, body: dict, expect: str) -> float:
    started = time.perf_counter()
    answer = await client.post(url, json=body)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200 or expect not in answer.text:
        raise RuntimeError(f"unexpected answer: {answer.text[:300]}")
    return elapsed


async def measure(
    args: argparse.Namespace, gateway: str, upstream: str, mcp_url: str, secret: str
) -> str:
    headers = {"authorization": f"Bearer {secret}"}
    tool = {
        "type": "mcp",
        "server_label": "calc",
        "server_url": mcp_url,
        "require_approval": "never",
    }
    plain = {"model": "bench-model", "input": "hello"}
    hosted = {"model": "bench-model", "input": CALL, "tools": [tool]}
    chat = {"model": "bench-model", "messages": [{"role": "user", "content": "hello"}]}
    times: dict[str, list[float]] = {"direct": [], "plain": [], "hosted": [], "upstream": []}
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        for _ in range(args.warmup):
            await timed_post(client, f"{gateway}/responses", hosted, "done: 5")
        for _ in range(args.rounds):
            times["direct"].append(await direct_mcp(mcp_url))
            times["plain"].append(
                await timed_post(client, f"{gateway}/responses", plain, "completed")
            )
            times["hosted"].append(
                await timed_post(client, f"{gateway}/responses", hosted, "done: 5")
            )
            times["upstream"].append(
                await timed_post(client, f"{upstream}/chat/completions", chat, "stop")
            )
        medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
        added = medians["hosted"] - medians["plain"] - medians["upstream"] - medians["direct"]

        async def turns(clients: int, seconds: float) -> float:
            done = 0
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    await timed_post(client, f"{gateway}/responses", hosted, "done: 5")
                    done += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            return done / (time.perf_counter() - started)

        one = await turns(1, args.seconds)
        many = await turns(args.clients, args.seconds)
    rows = "\n".join(f"| {name} | {value:.2f} |" for name, value in medians.items())
    return (
        f"## bench/hosted_mcp.py — {time.strftime('%Y-%m-%d')} ({machine()})\n\n"
        f"| path (median of {args.rounds} rounds) | ms |\n|---|---|\n{rows}\n\n"
        f"Added time per hosted call (hosted - plain - upstream - direct): **{added:.2f} ms**.\n"
        f"Turns per second with one MCP call per turn: **{one:.1f}** (1 client), "
        f"**{many:.1f}** ({args.clients} clients).\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    stack = Stack()
    try:
        tmp = Path(tempfile.mkdtemp(prefix="rapport-bench-mcp-"))
        stack.push("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
        name, url = create_database(args.admin_url)
        stack.push(f"database {name}", lambda: drop_database(args.admin_url, name))
        upstream_port, gateway_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env |= {
            "RAPPORT_DATABASE_URL": url,
            "RAPPORT_UPSTREAM_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
            "RAPPORT_UPSTREAM_API_KEY": "sk-upstream-bench",
            "RAPPORT_ALLOWED_TOOL_HOSTS": "127.0.0.1",
            "RAPPORT_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
        rapport = rapport_executable()
        run_cli([rapport, "db", "upgrade"], env, ROOT)
        secret = run_cli([rapport, "keys", "create", "--name", "bench"], env, ROOT).splitlines()[-1]
        upstream_argv = [
            sys.executable,
            str(ROOT / "tests" / "upstream.py"),
            "--port",
            str(upstream_port),
        ]
        stack.spawn("upstream", upstream_argv, env, tmp, ROOT)
        url_file = tmp / "mcp-urls"
        stack.spawn(
            "mcp",
            [sys.executable, "-m", "tests.mcp_server", "--url-file", str(url_file)],
            env,
            tmp,
            ROOT,
        )
        stack.spawn("rapport", [rapport, "serve", "--port", str(gateway_port)], env, tmp, ROOT)
        wait_ready(stack, f"http://127.0.0.1:{upstream_port}/v1/models")
        wait_ready(stack, f"http://127.0.0.1:{gateway_port}/health")
        while not url_file.exists() or not url_file.read_text().strip():
            stack.check_alive()
            time.sleep(0.05)
        mcp_url = url_file.read_text().splitlines()[0]
        report = asyncio.run(
            measure(
                args,
                f"http://127.0.0.1:{gateway_port}/v1",
                f"http://127.0.0.1:{upstream_port}/v1",
                mcp_url,
                secret,
            )
        )
        print(report)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        stack.close()


if __name__ == "__main__":
    raise SystemExit(main())
