"""Structured logs on stderr: JSON lines for machines, or a readable console form for people.

Only whitelisted `extra` fields are written, so a log call cannot leak a key or a body by
accident; tracebacks are dropped for the same reason — also those that a library (uvicorn's
lifespan) has already formatted into its message. What is written is scrubbed of every
credential the process holds (app/secrets/), and the loggers of the HTTP and SQLite layers,
whose DEBUG lines quote request and response headers or statement parameters, are held to
warnings whatever level is set. `RAPPORT_LOG_FORMAT` picks the form; unset,
a terminal gets the console form and anything else (a container, a file, a pipe) JSON.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Literal, TextIO

import msgspec

from app.secrets import registry as secret_registry

LogFormat = Literal["json", "console"]

# Ids, the access log's facts and the start-up banner's: never a key, a body or a message text
# of a client's.
FIELDS = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "response_id",
    "conversation_id",
    "project_id",
    "key_id",
    "model",
    "upstream_ms",
    "input_tokens",
    "output_tokens",
    "stream",
    "error_kind",
    "path",
    "version",
    "listen",
    "database",
    "queue",
    "upstream",
    "routes",
    "setting",
)
_TRACEBACK_MARKERS = ("Traceback (most recent call last)", "Exception Group Traceback")
_encoder = msgspec.json.Encoder()
# The access log's message already says these; the console form does not repeat them.
_IN_MESSAGE = frozenset({"method", "route", "status", "duration_ms", "upstream", "setting"})
# Their DEBUG (and INFO) lines carry headers (httpcore's `receive_response_headers`, hpack's
# decoded fields), full request lines, or SQL parameters (aiosqlite): never written below WARNING.
QUIETED_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "hpack", "h2", "aiosqlite")


class QuietLibraries(logging.Filter):
    """Drops the quieted loggers' records below WARNING, even when a level set elsewhere
    (a library, a debugging session) would let them through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        name = record.name
        return not any(name == q or name.startswith(q + ".") for q in QUIETED_LOGGERS)


def _message(record: logging.LogRecord) -> str:
    """The record's message with any formatted traceback cut off (it may quote SQL parameters,
    a request body or a key)."""
    text = record.getMessage()
    cut = min((text.find(m) for m in _TRACEBACK_MARKERS if m in text), default=-1)
    if cut >= 0:
        text = text[:cut].rstrip(" \n+|") or "an error occurred"
        text += " (traceback withheld)"
    return secret_registry.log_scrubber().scrub(text)


def _field(record: logging.LogRecord, field: str) -> object:
    value = getattr(record, field, None)
    return secret_registry.log_scrubber().scrub(value) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _message(record),
        }
        for field in FIELDS:
            value = _field(record, field)
            if value is not None:
                line[field] = value
        return _encoder.encode(line).decode()


class ConsoleFormatter(logging.Formatter):
    """`12:00:01 info  message  key=value …`: the same whitelisted fields, for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        parts = [f"{clock} {record.levelname.lower():<7} {_message(record)}"]
        for field in FIELDS:
            value = _field(record, field)
            if value is not None and field not in _IN_MESSAGE:
                parts.append(f"{field}={value}")
        return "  ".join(parts)


def default_format() -> LogFormat:
    return "console" if sys.stderr.isatty() else "json"


def handler(fmt: LogFormat | None = None, stream: TextIO | None = None) -> logging.Handler:
    """The one handler Rapport logs through: stderr (or `stream`), the chosen form, the
    libraries quieted."""
    written = logging.StreamHandler(stream or sys.stderr)
    chosen = fmt or default_format()
    written.setFormatter(ConsoleFormatter() if chosen == "console" else JsonFormatter())
    written.addFilter(QuietLibraries())
    return written


def configure(level: str = "INFO", fmt: LogFormat | None = None) -> None:
    root = logging.getLogger()
    root.handlers[:] = [handler(fmt)]
    root.setLevel(level)
    # httpx logs every upstream request line at INFO; the runner logs what matters. Alembic
    # logs a line per migration step; `rapport` says in one line what it migrated.
    for name in QUIETED_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.Formatter.converter = time.gmtime
