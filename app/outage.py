"""A database or Redis that does not answer: how to tell, and the 503 a client gets for it.

An outage is not a bug of ours, so it is no generic 500: it is OpenAI's error object with
status 503 and `retry-after`. Whether a blind retry is safe depends on what the request had
stored before the store went away, which `app/acceptance.py` records: nothing yet (unit of
work #1 failed before its commit, a read failed) → `x-should-retry: true`; a response stored
or a commit whose fate is unknown → `x-should-retry: false`, naming the id when there is one,
since a retry would create a second one.

    UNREACHABLE (matched by class, then `is_unreachable` decides)
    ├── sqlalchemy DBAPIError            only OperationalError, InterfaceError, or a
    │                                    connection SQLAlchemy invalidated (a disconnect)
    ├── sqlalchemy TimeoutError          the pool had no connection to give in time
    ├── asyncpg PostgresConnectionError, asyncpg InterfaceError   (unwrapped)
    ├── OSError                          refused, reset, unreachable, timed out; not a file error
    ├── redis ConnectionError, redis TimeoutError
    └── CommitUncertain                  the store went away during COMMIT (db/session.py)
"""

from __future__ import annotations

import socket

import asyncpg  # type: ignore[import-untyped]
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.errors import ServerFault

# Long enough for a connection blip or a pool to refill, short enough for the SDK's own
# backoff (it honours retry-after up to 60 s) to try again within the same call.
RETRY_AFTER_SECONDS = 5


class CommitUncertain(Exception):
    """The connection was lost while COMMIT was under way: the writes may or may not be
    stored, so the request must be treated as accepted (no blind retry)."""


UNREACHABLE: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    OSError,
    RedisConnectionError,
    RedisTimeoutError,
    CommitUncertain,
)


def is_unreachable(exc: BaseException) -> bool:
    """True when `exc` says a store did not answer (rather than that a statement was wrong)."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated
    if isinstance(exc, OSError):
        # A failed connect to several addresses is a plain OSError; FileNotFoundError and
        # its kin are bugs, not outages.
        return type(exc) is OSError or isinstance(
            exc, ConnectionError | TimeoutError | socket.gaierror
        )
    return isinstance(exc, UNREACHABLE)


def unavailable(stored_id: str | None, *, uncertain: bool = False) -> ServerFault:
    """The 503 for an outage; `stored_id`/`uncertain` say the request may have been stored."""
    message = "The service is temporarily unavailable: its database or queue did not answer."
    accepted = stored_id is not None or uncertain
    if stored_id is not None:
        message += (
            f" {stored_id} was stored before that: retrieve it rather than creating it again."
        )
    elif uncertain:
        message += " The request may have been stored; check before sending it again."
    else:
        message += " Nothing was stored; please retry your request."
    return ServerFault(
        message,
        status_code=503,
        code="service_unavailable",
        headers={
            "retry-after": str(RETRY_AFTER_SECONDS),
            "x-should-retry": "false" if accepted else "true",
        },
    )
