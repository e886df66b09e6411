"""How deep a request body may nest: a bound checked before decoding, named in OpenAI's 400.

A body nested about a thousand levels deep (in `tools[].parameters`, a JSON schema, a tool
output, prompt variables) overflows the recursion of any decoder or encoder that walks it: a
500 for a bad input. Real schemas nest a few dozen levels at most. The check is done on the
bytes, before anything recurses: two byte counts for ordinary bodies; a body with as many
brackets as the bound has its strings stripped and its brackets summed in C-speed passes, and
only a body that is too deep is looked into further, to name where.
"""

from __future__ import annotations

import re
from itertools import accumulate

from app.errors import InvalidRequest

MAX_DEPTH = 100
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"{}[]")
_OPENERS = frozenset(b"{[")


def check(body: bytes) -> None:
    if body.count(b"{") + body.count(b"[") < MAX_DEPTH or depth_of(body) <= MAX_DEPTH:
        return
    where = _where(body)
    raise InvalidRequest(
        f"Invalid '{where or 'body'}': the value is nested more than {MAX_DEPTH} levels deep.",
        param=where,
        code="invalid_value",
    )


def depth_of(raw: bytes) -> int:
    """The deepest nesting of a JSON text (brackets inside strings do not count)."""
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(1 if byte in _OPENERS else -1 for byte in brackets), default=0)


_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\],:]', re.DOTALL)


def _where(body: bytes) -> str | None:
    """The top-level field (and its list entry) where the nesting first passes the bound: one
    pass over the body's tokens that stops there (no decoder: each would recurse)."""
    depth, key, index, in_list = 0, None, -1, False
    last_string: bytes | None = None
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token[:1] == b'"':
            last_string = token
            continue
        if token in (b"{", b"["):
            depth += 1
            if depth == 2:
                in_list = token == b"["
                index = 0 if in_list else -1
            if depth > MAX_DEPTH:
                break
        elif token in (b"}", b"]"):
            depth -= 1
        elif token == b":" and depth == 1 and last_string is not None:
            key, index = last_string[1:-1].decode("utf-8", "replace"), -1
        elif token == b"," and depth == 2 and in_list:
            index += 1
    else:
        return None
    if key is None:
        return None
    return f"{key}[{index}]" if index >= 0 else key
