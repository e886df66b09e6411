"""What Rapport's own log handler writes while a test runs, as the process would write it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from app import logs

# The test servers' own loggers (the MCP server is in this process): not Rapport's lines.
TEST_SERVERS = ("sse_starlette", "mcp.server", "uvicorn")


class _NotTestServers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(TEST_SERVERS)


@contextmanager
def written_logs(level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """Rapport's JSON log lines at `level`, formatted when they are logged (a run's secrets
    are scrubbed while the run holds them)."""
    written = io.StringIO()
    handler = logs.handler("json", written)
    handler.addFilter(_NotTestServers())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield written
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
