"""Which optional request parameters each provider takes, as a route may override.

`top_k`, `metadata` and `text.verbosity` exist on some upstreams only: OpenAI refuses `top_k`
and vLLM takes it; Anthropic and Gemini sample with it; a Responses upstream takes metadata and
verbosity as the client sent them. A provider's default is what its own API accepts; a route's
`forward_*` says otherwise for servers that differ (a vLLM behind `openai-chat` takes top_k).
"""

from __future__ import annotations

import msgspec

from app.config import ModelRoute


class Takes(msgspec.Struct, frozen=True):
    top_k: bool = False
    metadata: bool = False
    verbosity: bool = False


PROVIDER_TAKES: dict[str, Takes] = {
    "openai-chat": Takes(),
    "anthropic": Takes(top_k=True),
    "gemini": Takes(top_k=True),
    "openai-responses": Takes(metadata=True, verbosity=True),
}


def takes(route: ModelRoute) -> Takes:
    """The provider's defaults with the route's overrides."""
    default = PROVIDER_TAKES[route.provider]
    return Takes(
        top_k=default.top_k if route.forward_top_k is None else route.forward_top_k,
        metadata=default.metadata if route.forward_metadata is None else route.forward_metadata,
        verbosity=(
            default.verbosity if route.forward_verbosity is None else route.forward_verbosity
        ),
    )
