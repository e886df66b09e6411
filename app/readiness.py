"""`GET /ready`: may this process take traffic? Each check is named, and says what is wrong.

    database    answers a query within CHECK_TIMEOUT seconds
    migrations  the database's revision is this code's newest (else `rapport db upgrade`)
    redis       answers PING (only with RAPPORT_REDIS_URL)
    worker      some `rapport worker` has a fresh heartbeat (only with RAPPORT_REDIS_URL:
                without a worker, background responses would wait `queued` for ever)

Ready is 200 `{"status": "ready", "checks": {...}}`; anything else is 503 with the same shape,
`status: "not_ready"`, and each failing check's sentence in place of "ok".
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from app import redact, schema
from app.queue import heartbeat

CHECK_TIMEOUT = 3.0
OK = "ok"


async def _database(runtime: Any, results: dict[str, str]) -> float | None:
    started = time.perf_counter()
    try:
        state = await asyncio.wait_for(schema.inspect(runtime.engine), CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001  (any failure means not ready; say which)
        where = redact.database_url(runtime.settings.database_url)
        results["database"] = f"not reachable at {where} ({type(exc).__name__})"
        results["migrations"] = "unknown: the database is not reachable"
        return None
    results["database"] = OK
    results["migrations"] = state.problem() or OK
    return round((time.perf_counter() - started) * 1000, 2)


async def _redis(runtime: Any, results: dict[str, str]) -> None:
    where = redact.plain_url(runtime.settings.redis_url or "")
    try:
        await asyncio.wait_for(runtime.redis.ping(), CHECK_TIMEOUT)
        workers = await asyncio.wait_for(heartbeat.live_workers(runtime.redis), CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        results["redis"] = f"not reachable at {where} ({type(exc).__name__})"
        results["worker"] = "unknown: Redis is not reachable"
        return
    results["redis"] = OK
    results["worker"] = (
        OK
        if workers
        else f"no `rapport worker` has sent a heartbeat in {heartbeat.FRESH_SECONDS:g} s: "
        "background responses stay queued until one runs (start `rapport worker` with the "
        "same RAPPORT_REDIS_URL)"
    )


async def check(runtime: Any) -> tuple[bool, dict[str, Any]]:
    results: dict[str, str] = {}
    database_ms = await _database(runtime, results)
    if runtime.redis is not None:
        await _redis(runtime, results)
    ready = all(value == OK for value in results.values())
    body: dict[str, Any] = {
        "status": "ready" if ready else "not_ready",
        "checks": results,
        "queue": type(runtime.queue).__name__,
    }
    if database_ms is not None:
        body["database_ms"] = database_ms
    return ready, body
