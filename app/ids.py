"""Prefixed, time-sortable object ids: the one place ids are made.

An id is `<prefix>_` + 12 hex digits of milliseconds since the epoch + 36 hex digits of
randomness. Sorting ids as strings sorts them by creation time, which keeps primary-key indexes
append-mostly and lets pagination fall back on the id itself.
"""

import os
import secrets
import time

RESPONSE = "resp"
MESSAGE = "msg"
FUNCTION_CALL = "fc"
FUNCTION_CALL_OUTPUT = "fco"
CUSTOM_TOOL_CALL = "ctc"
CUSTOM_TOOL_CALL_OUTPUT = "ctco"
REASONING = "rs"
COMPACTION = "cmp"
ITEM_REFERENCE = "iref"
CONVERSATION = "conv"
API_KEY = "key"
PROJECT = "proj"
REQUEST = "req"
PROMPT = "pmpt"
MCP_CALL = "mcp"
MCP_LIST_TOOLS = "mcpl"
MCP_APPROVAL_REQUEST = "mcpr"
MCP_APPROVAL_RESPONSE = "mcpa"
WEB_SEARCH_CALL = "ws"
WORKER = "wrk"  # a `rapport worker` process, in its heartbeat

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def new_id(prefix: str) -> str:
    """A new id with `prefix`; unique without coordination (144 random bits per millisecond)."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{millis:012x}{os.urandom(18).hex()}"


def new_secret(prefix: str = "sk-gateway-") -> str:
    """A bearer secret: 256 random bits, URL-safe, so it survives headers and shells unquoted."""
    return prefix + secrets.token_urlsafe(32)


def is_well_formed(value: str) -> bool:
    """True when `value` could be an id of ours (letters, digits, `_`, `-`), as OpenAI checks."""
    return 0 < len(value) <= 128 and all(char in _ID_CHARS for char in value)


def expect(value: str, prefix: str, param: str) -> None:
    """An id as OpenAI checks one it is given: well formed (letters, digits, `_`, `-`: no NUL
    reaches the database), then of the kind asked for (`conv_…` where a conversation is)."""
    from app.errors import InvalidRequest  # errors imports nothing of ours; ids stays a leaf

    if not is_well_formed(value):
        raise InvalidRequest(
            f"Invalid '{param}': '{value[:200]}'. Expected an ID that contains letters, "
            "numbers, underscores, or dashes, but this value contained additional characters.",
            param=param,
            code="invalid_value",
        )
    if not value.startswith(f"{prefix}_"):
        raise InvalidRequest(
            f"Invalid '{param}': '{value}'. Expected an ID that begins with '{prefix}'.",
            param=param,
            code="invalid_value",
        )
