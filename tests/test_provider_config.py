"""Route options of the native providers: defaults per provider, overrides, refusals."""

from __future__ import annotations

import pytest

from app.config import ModelRoute
from app.providers import native
from app.providers.params import takes
from app.tokens.models import window_for


def test_a_route_without_base_url_goes_to_its_providers_api() -> None:
    assert ModelRoute(name="a").base_url == "https://api.openai.com/v1"
    assert ModelRoute(name="c", provider="anthropic").base_url == "https://api.anthropic.com/v1"
    gemini = ModelRoute(name="g", provider="gemini")
    assert gemini.base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert ModelRoute(name="x", provider="gemini", base_url="http://h/v1").base_url == "http://h/v1"


def test_each_provider_takes_its_own_parameters_unless_the_route_says() -> None:
    assert not takes(ModelRoute(name="a")).top_k
    assert takes(ModelRoute(name="c", provider="anthropic")).top_k
    assert not takes(ModelRoute(name="c", provider="anthropic", forward_top_k=False)).top_k
    relay = takes(ModelRoute(name="r", provider="openai-responses"))
    assert (relay.top_k, relay.metadata, relay.verbosity) == (False, True, True)


def test_upstream_tools_belong_to_a_responses_upstream_only() -> None:
    with pytest.raises(ValueError, match="only an openai-responses upstream"):
        ModelRoute(name="a", upstream_tools=("web_search",))
    with pytest.raises(ValueError, match="cannot run upstream"):
        ModelRoute(name="r", provider="openai-responses", upstream_tools=("mcp",))


def test_the_margin_shrinks_only_the_input_part_of_the_window() -> None:
    claude = ModelRoute(
        name="c", provider="anthropic", context_window=200_000, max_output_tokens=8_000
    )
    assert window_for("c", claude) == (8_000 + int(192_000 / 1.25), 8_000)
    exact = ModelRoute(name="c", provider="anthropic", context_window=1000, token_margin=1.0)
    assert window_for("c", exact) == (1000, None)


def test_native_state_is_read_by_its_own_provider_only() -> None:
    blob = native.wrap("anthropic", {"signature": "s"})
    item = {"type": "reasoning", "encrypted_content": blob}
    assert native.of_item("anthropic", item) == {"signature": "s"}
    assert native.of_item("gemini", item) is None
    assert native.unwrap("anthropic", "rapport.anthropic.!!!") is None
    assert native.unwrap("anthropic", "gAAAAA-sealed") is None
