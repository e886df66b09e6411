"""Expected failures of a command, as one sentence that says what to do — never a traceback.

A database that is down, a schema never migrated, a wrong password, a port in use: each is
an everyday condition with a known fix, so `rapport` prints the fix and exits non-zero. Only
an exception nobody expected (a bug) still shows its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator

from app import redact
from app.config import Settings

UPGRADE = "run `rapport db upgrade` (with the same RAPPORT_DATABASE_URL)"


class CommandError(Exception):
    """A failure whose message is already the sentence to print."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


_MISSING_SCHEMA = ("UndefinedTableError", "does not exist", "no such table")
_NO_DATABASE = ("InvalidCatalogNameError",)
_BAD_LOGIN = ("InvalidPasswordError", "InvalidAuthorizationSpecificationError")
_UNREACHABLE = (
    "ConnectionRefusedError",
    "ConnectionError",
    "gaierror",
    "TimeoutError",
    "CannotConnectNowError",
    "OperationalError",
    "ConnectionDoesNotExistError",
)


def explain(exc: BaseException, settings: Settings) -> str | None:
    """The sentence for an expected failure of the database, or None for anything else."""
    where = redact.database_url(settings.database_url)
    names = [type(link).__name__ for link in _chain(exc)]
    texts = " ".join(str(link) for link in _chain(exc))
    if any(name in _NO_DATABASE for name in names):
        return f"the database at {where} does not exist: create it, or fix RAPPORT_DATABASE_URL"
    if any(name in _BAD_LOGIN for name in names):
        return f"the database at {where} refused the login: check RAPPORT_DATABASE_URL"
    if any(marker in names or marker in texts for marker in _MISSING_SCHEMA):
        return f"the database at {where} has no Rapport schema (or an old one): {UPGRADE}"
    if any(name in _UNREACHABLE for name in names):
        kind = next(name for name in names if name in _UNREACHABLE)
        return (
            f"cannot reach the database at {where} ({kind}): is it running? "
            "It is set by RAPPORT_DATABASE_URL"
        )
    return None
