"""URLs fit to show in a log, a banner or an error: never a password, a token or a query.

Database URLs keep their user (it helps to know which role connected) but lose the password;
an upstream or Redis URL loses its user information and its query, where keys tend to hide.
SQLite paths are made absolute, so a message says which file was meant.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def database_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(an unparsable RAPPORT_DATABASE_URL)"
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        return f"sqlite {path}" if path is not None else "sqlite (in memory)"
    return parsed.set(query={}).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The absolute file of a SQLite URL (relative to the working folder), None in memory."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).expanduser().resolve()


def plain_url(url: str) -> str:
    """scheme://host[:port]/path: no user, password, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unparsable URL)"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, f"{host}{port}", parts.path, "", ""))
