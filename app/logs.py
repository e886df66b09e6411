"""Structured logs: one JSON object per line, carrying ids (response, project, request) only.

Only whitelisted `extra` fields are written, so a log call cannot leak a key or a body by
accident; exception tracebacks are dropped for the same reason.
"""

from __future__ import annotations

import logging
import sys
import time

import msgspec

_FIELDS = ("request_id", "response_id", "project_id", "key_id", "error_kind", "path", "status")
_encoder = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in _FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        return _encoder.encode(line).decode()


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every upstream request line at INFO; the runner logs what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.Formatter.converter = time.gmtime
