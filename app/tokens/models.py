"""Which encoding counts a model's tokens, and how big its window is.

A route in the models file may name both (`tokenizer`, `context_window`,
`max_output_tokens`). Otherwise OpenAI's own model families are known by name. Any other model
is counted with o200k_base: the stated fallback, an estimate whose error depends on how far the
model's own tokenizer is from it, so a route for such a model should set `tokenizer` when it is
an OpenAI encoding, or else keep a margin in its `context_window`. When the estimate falls short
the upstream's own context-length error is still mapped to OpenAI's error.
"""

from __future__ import annotations

from app.config import ModelRoute
from app.tokens.encodings import CL100K_BASE, O200K_BASE

FALLBACK_ENCODING = O200K_BASE

# Longest prefix first: "gpt-4o" must not be read as "gpt-4".
_ENCODING_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("gpt-4o", O200K_BASE),
    ("gpt-4.1", O200K_BASE),
    ("gpt-4.5", O200K_BASE),
    ("chatgpt-4o", O200K_BASE),
    ("gpt-4", CL100K_BASE),
    ("gpt-3.5", CL100K_BASE),
    ("text-embedding-3", CL100K_BASE),
    ("text-embedding-ada", CL100K_BASE),
)

# (context window, most output tokens) of OpenAI's families, for the catch-all route.
_WINDOWS_BY_PREFIX: tuple[tuple[str, tuple[int, int]], ...] = (
    ("gpt-4o-mini", (128_000, 16_384)),
    ("gpt-4o", (128_000, 16_384)),
    ("gpt-4.1", (1_047_576, 32_768)),
    ("gpt-4-turbo", (128_000, 4_096)),
    ("gpt-4-32k", (32_768, 8_192)),
    ("gpt-4", (8_192, 8_192)),
    ("gpt-3.5-turbo", (16_385, 4_096)),
    ("gpt-5", (400_000, 128_000)),
    ("o1", (200_000, 100_000)),
    ("o3", (200_000, 100_000)),
    ("o4-mini", (200_000, 100_000)),
)


def encoding_for(model: str, route: ModelRoute) -> str:
    if route.tokenizer is not None:
        return route.tokenizer
    for prefix, encoding in _ENCODING_BY_PREFIX:
        if model.startswith(prefix):
            return encoding
    return FALLBACK_ENCODING


def window_for(model: str, route: ModelRoute) -> tuple[int | None, int | None]:
    """(context window, output reserve); None where neither the route nor the name says. A
    route whose model counts tokens unlike the offline encoding (its `count_margin`) has the
    input part of the window shrunk by that margin, so the estimate's error falls inside it."""
    if route.context_window is not None:
        reserve = route.max_output_tokens or 0
        estimated = reserve + int((route.context_window - reserve) / route.count_margin)
        return estimated, route.max_output_tokens
    upstream_model = route.upstream_model or model
    for prefix, (window, output) in _WINDOWS_BY_PREFIX:
        if upstream_model.startswith(prefix):
            return window, route.max_output_tokens or output
    return None, route.max_output_tokens
