"""The process's secrets: registered once at start-up, plus those a running response holds.

Start-up registers what settings and routes give (every upstream key, the sealing keys); a run
with hosted tools adds its callers' MCP credentials for as long as it runs (`held`), so that the
log lines written meanwhile are scrubbed of them too. Scrubbers are built once per set of
secrets and cached: a run without credentials of its own uses the process's scrubber as is.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache

from app.secrets.scrubber import Scrubber

_lock = threading.Lock()
_registered: set[str] = set()
_held: Counter[str] = Counter()


def register(*secrets: str | None) -> None:
    """Add credentials the process holds for good (None and empty values are skipped)."""
    with _lock:
        _registered.update(secret for secret in secrets if secret)


def process_scrubber() -> Scrubber:
    """The scrubber of every registered secret."""
    return _scrubber(frozenset(_registered))


def run_scrubber(extra: Iterable[str] = ()) -> Scrubber:
    """The process's secrets and one run's own (its MCP servers' credentials)."""
    return _scrubber(frozenset(_registered).union(extra))


def log_scrubber() -> Scrubber:
    """Every secret a log line must not show: the registered ones and those held by runs."""
    with _lock:
        everything = frozenset(_registered).union(_held)
    return _scrubber(everything)


def hold(secrets: Iterable[str]) -> None:
    """Count `secrets` as live (for the logs) until they are `release`d."""
    with _lock:
        _held.update(secret for secret in secrets if secret)


def release(secrets: Iterable[str]) -> None:
    with _lock:
        for secret in secrets:
            if secret and _held[secret] > 0:
                _held[secret] -= 1
                if _held[secret] == 0:
                    del _held[secret]


@contextmanager
def held(secrets: Iterable[str]) -> Iterator[None]:
    """`hold` while the block runs."""
    values = list(secrets)
    hold(values)
    try:
        yield
    finally:
        release(values)


@lru_cache(maxsize=256)
def _scrubber(secrets: frozenset[str]) -> Scrubber:
    return Scrubber(secrets)
