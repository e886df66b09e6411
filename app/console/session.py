"""The console's sign-in state: a sealed cookie naming the key, never holding its secret.

The cookie is a token sealed with the server key (`app/sealing.py`: encrypted and
authenticated), so a client can neither read nor forge it. It names the gateway key the person
signed in with, its project, an expiry and the session's CSRF token; the key itself is checked
on every request (`access.py`), so revoking it ends the session at once. A `purpose` field
keeps a console token from ever being taken for another sealed blob of ours, or the other way.

Signing in has its own short-lived token: the form's CSRF token, bound to a cookie, so a
third-party page cannot sign a browser in to a project of its choosing.
"""

from __future__ import annotations

import hmac
import secrets
import time

import msgspec

from app.auth import Caller
from app.sealing import SealBroken, Sealer

SESSION_COOKIE = "rapport_console"
SIGN_IN_COOKIE = "rapport_console_sign_in"
COOKIE_PATH = "/console"
SESSION_SECONDS = 12 * 3600
SIGN_IN_SECONDS = 3600
_SESSION_PURPOSE = "rapport-console-session"
_SIGN_IN_PURPOSE = "rapport-console-sign-in"


class ConsoleSession(msgspec.Struct, frozen=True):
    key_id: str
    project_id: str
    csrf: str
    expires: int

    @property
    def caller(self) -> Caller:
        """The same caller the API would resolve this key to: services scope by it."""
        return Caller(project_id=self.project_id, key_id=self.key_id)


def issue_session(sealer: Sealer, caller: Caller) -> tuple[ConsoleSession, str]:
    session = ConsoleSession(
        key_id=caller.key_id,
        project_id=caller.project_id,
        csrf=secrets.token_urlsafe(32),
        expires=int(time.time()) + SESSION_SECONDS,
    )
    token = sealer.seal({"purpose": _SESSION_PURPOSE, **msgspec.to_builtins(session)})
    return session, _unpadded(token)


def read_session(sealer: Sealer, token: str | None) -> ConsoleSession | None:
    """The session a cookie holds; None when absent, forged, of another purpose or expired."""
    payload = _open(sealer, token, _SESSION_PURPOSE)
    if payload is None:
        return None
    try:
        session = msgspec.convert(payload, ConsoleSession)
    except msgspec.ValidationError:
        return None
    return session if session.expires > time.time() else None


def issue_sign_in(sealer: Sealer) -> tuple[str, str]:
    """(the form's CSRF token, the cookie bound to it)."""
    csrf = secrets.token_urlsafe(32)
    expires = int(time.time()) + SIGN_IN_SECONDS
    token = sealer.seal({"purpose": _SIGN_IN_PURPOSE, "csrf": csrf, "expires": expires})
    return csrf, _unpadded(token)


def sign_in_csrf(sealer: Sealer, token: str | None) -> str | None:
    payload = _open(sealer, token, _SIGN_IN_PURPOSE)
    if payload is None:
        return None
    expires, csrf = payload.get("expires"), payload.get("csrf")
    if not isinstance(expires, int) or expires <= time.time() or not isinstance(csrf, str):
        return None
    return csrf


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison, so a wrong token's timing tells nothing of the right one."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def _unpadded(token: str) -> str:
    """Fernet tokens end in base64 `=` padding, which a cookie would have to quote: cut it."""
    return token.rstrip("=")


def _open(sealer: Sealer, token: str | None, purpose: str) -> dict[str, object] | None:
    if not token or len(token) > 4096:
        return None
    try:
        payload = sealer.open(token + "=" * (-len(token) % 4))
    except SealBroken:
        return None
    return payload if payload.get("purpose") == purpose else None
