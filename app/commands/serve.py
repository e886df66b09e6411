"""`rapport serve` and `rapport worker` start-up: preflight, banner, upstream probe.

Before uvicorn starts, the things a new user gets wrong are checked and said in one line each:
the port is taken, the database is down or has no schema (`rapport db upgrade`), migrations
are pending. Then a banner says what this process serves — version, listen URL, database,
queue, model routes — and warns when the catch-all upstream has no key. A background thread
then asks each upstream for `/models` with a short timeout and warns when one does not answer
or refuses the key: off the critical path, so an offline laptop starts just as fast.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import logging
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from app import __version__, logs, redact
from app.commands.database import migrate_embedded
from app.commands.failures import UPGRADE, CommandError
from app.config import Settings

log = logging.getLogger("rapport")
PROBE_TIMEOUT = 3.0
MAX_PROBES = 8
# How uvicorn serves Rapport; bench/floor_app.py serves its no-op app the same way, so the
# two stay comparable.
UVICORN_OPTIONS: dict[str, Any] = {"log_config": None, "access_log": False, "server_header": False}


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    logs.configure(settings.log_level, settings.log_format)
    check_port(args.host, args.port)
    warnings = prepare_database(settings)
    banner(settings, listen_url(args.host, args.port), warnings)
    threading.Thread(target=probe_upstreams, args=(settings,), daemon=True).start()
    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        **UVICORN_OPTIONS,
        # The hard end of a shutdown; running responses are ended a moment before it
        # (app/shutdown.py), with their terminal event.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )
    return 0


def worker(args: argparse.Namespace, settings: Settings) -> int:
    from app.cli import run_on_fastest_loop
    from app.queue.worker import run_worker

    if not settings.redis_url:
        raise CommandError(
            "the worker needs RAPPORT_REDIS_URL; without it `rapport serve` runs "
            "background jobs itself"
        )
    logs.configure(settings.log_level, settings.log_format)
    for warning in prepare_database(settings):
        log.warning(warning)
    if args.metrics_port is not None:
        # A worker's runs count their upstream calls and tokens in its own process; the API's
        # /metrics cannot see them, so the worker serves its own.
        from prometheus_client import start_http_server

        check_port(args.metrics_host, args.metrics_port)
        start_http_server(args.metrics_port, args.metrics_host)
        log.info(f"worker metrics at {listen_url(args.metrics_host, args.metrics_port)}/metrics")
    run_on_fastest_loop(run_worker(settings, args.concurrency))
    return 0


def listen_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def check_port(host: str, port: int) -> None:
    """Fail with a sentence, not uvicorn's traceback, when the address cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {host!r}: {exc.strerror}; check --host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            where = listen_url(host, port).removeprefix("http://")
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"cannot listen on {where}: the address is in use (another `rapport "
                    "serve`?); stop it, or pick another port with --port"
                ) from None
            raise CommandError(f"cannot listen on {where}: {exc.strerror}") from None


def prepare_database(settings: Settings) -> list[str]:
    """Migrate the embedded database; on any other, refuse a missing schema and warn about
    pending migrations (the server starts; `/ready` says 503 until they run)."""
    if settings.is_embedded_database:
        done = migrate_embedded(settings)
        if done:
            log.info(done)
        return []
    from app.db.session import create_engine
    from app.schema import inspect

    async def read() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            return (await inspect(engine)).problem()
        finally:
            await engine.dispose()

    problem = asyncio.run(read())
    if problem is None:
        return []
    where = redact.database_url(settings.database_url)
    if problem.startswith("the database has no Rapport schema"):
        raise CommandError(f"the database at {where} has no Rapport schema: {UPGRADE}")
    return [f"{problem} — the API answers, /ready says 503 until then"]


def _routes(settings: Settings) -> list[str]:
    shown = [f"{route.name} → {redact.plain_url(route.base_url)}" for route in settings.routes]
    catch_all = redact.plain_url(settings.upstream_base_url)
    shown.append(f"* → {catch_all} (catch-all, RAPPORT_UPSTREAM_BASE_URL)")
    return shown


def _queue(settings: Settings) -> str:
    if settings.redis_url:
        return f"Redis {redact.plain_url(settings.redis_url)}: background jobs run in `rapport worker`s"
    return "in-process (set RAPPORT_REDIS_URL to run background jobs in `rapport worker`s)"


def upstream_warnings(settings: Settings) -> list[str]:
    """What is wrong with the upstream settings before any request is made."""
    import os

    found: list[str] = []
    if not settings.upstream_api_key and not _is_local(settings.upstream_base_url):
        found.append(
            f"the catch-all upstream {redact.plain_url(settings.upstream_base_url)} has no key: "
            "set RAPPORT_UPSTREAM_API_KEY (or OPENAI_API_KEY), or point "
            "RAPPORT_UPSTREAM_BASE_URL at a local model server (README: Running with a local "
            "model)"
        )
    for route in settings.routes:
        if route.api_key_env and not os.environ.get(route.api_key_env):
            found.append(
                f"the route {route.name!r} takes its key from {route.api_key_env}, which is unset"
            )
    return found


def banner(settings: Settings, listen: str, warnings: list[str]) -> None:
    database = redact.database_url(settings.database_url)
    queue, routes = _queue(settings), _routes(settings)
    headline = f"Rapport {__version__} listening on {listen} (OpenAI base URL {listen}/v1)"
    if (settings.log_format or logs.default_format()) == "json":
        fields: dict[str, object] = {"version": __version__, "listen": listen}
        fields.update({"database": database, "queue": queue, "routes": routes})
        log.info(headline, extra=fields)
    else:
        log.info(headline)
        log.info(f"  database  {database}")
        log.info(f"  queue     {queue}")
        for index, route in enumerate(routes):
            log.info(f"  {'models' if index == 0 else '':<8}  {route}")
        log.info(f"  metrics   {listen}/metrics   readiness {listen}/ready")
    for warning in [*warnings, *upstream_warnings(settings)]:
        log.warning(warning)


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host in ("localhost", "host.docker.internal") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def probe_upstreams(settings: Settings) -> None:
    """GET {base}/models of each upstream once, warning about those that do not answer."""
    import os

    import httpx

    targets: dict[str, tuple[str | None, str]] = {}
    for route in settings.routes:
        key = os.environ.get(route.api_key_env) if route.api_key_env else None
        where = f"the base_url of the route {route.name!r} in the models file"
        targets.setdefault(route.base_url.rstrip("/"), (key, where))
    catch_all = settings.upstream_base_url.rstrip("/")
    targets.setdefault(catch_all, (settings.upstream_api_key, "RAPPORT_UPSTREAM_BASE_URL"))
    for base, (key, where) in list(targets.items())[:MAX_PROBES]:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        shown = redact.plain_url(base)
        try:
            answer = httpx.get(f"{base}/models", headers=headers, timeout=PROBE_TIMEOUT)
        except httpx.HTTPError as exc:
            log.warning(
                f"the upstream {shown} does not answer ({type(exc).__name__}): responses "
                f"routed there fail with 502 until it does; it is set by {where}",
                extra={"upstream": shown, "setting": where},
            )
            continue
        if answer.status_code in (401, 403):
            log.warning(
                f"the upstream {shown} refused Rapport's key (HTTP {answer.status_code})",
                extra={"upstream": shown},
            )
        else:
            log.info(f"the upstream {shown} answers", extra={"upstream": shown})
