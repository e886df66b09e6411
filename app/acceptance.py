"""What the current request has stored so far: the id a 5xx must name, and whether it may retry.

A 5xx that follows an accepted create (the response row committed in unit of work #1) must say
`x-should-retry: false` and name the stored id, or the SDK's automatic retry creates the
response a second time. The service that commits records the id here; the error handlers in
`app/http.py` read it. A ContextVar because one request is one task: the handler, the service
it awaits and the exception handler that renders its failure all share the task's context,
and no other request sees it.
"""

from __future__ import annotations

from contextvars import ContextVar

_stored: ContextVar[str | None] = ContextVar("rapport_stored_id", default=None)


def record(stored_id: str) -> None:
    """This request's object `stored_id` is (or may be) in the database now."""
    _stored.set(stored_id)


def stored_id() -> str | None:
    return _stored.get()
