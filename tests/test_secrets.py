"""The scrubber on its own: every form of a secret, every chunk boundary, and ordinary text
left alone."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote

import httpx
import pytest

from app.config import ModelRoute, Settings
from app.providers.registry import ProviderRegistry
from app.sealing import Sealer
from app.secrets import registry
from app.secrets.scrubber import HOLD_AFTER, REDACTED, Scrubber

KEY = "sk-proj-Zq8Xv2LmT4pW9sKd7YhR3nBc6FgJ1uEa"
# A key with the characters URL- and base64-encodings change (a Fernet-style key).
ODD_KEY = "k+7/Qm=Vt9&Lp2?Rw5 Xz8#Nc4%Hs6"
scrubber = Scrubber([KEY, ODD_KEY])


def mixed_case(text: str) -> str:
    return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(text))


def encodings(secret: str) -> list[str]:
    """base64 (standard, URL-safe) of the secret behind 0, 1 and 2 other bytes, with bytes
    after it, as it sits inside a larger encoded blob."""
    found = []
    for before in (b"", b"u", b"us"):
        raw = before + secret.encode() + b"!tail"
        found.append(base64.b64encode(raw).decode())
        found.append(base64.urlsafe_b64encode(raw).decode())
    return found


def forms(secret: str) -> list[str]:
    return [
        secret,
        secret.upper(),
        secret.lower(),
        mixed_case(secret),
        secret[:-1],
        secret[:-5],
        secret[:12],
        quote(secret, safe=""),
        quote(secret, safe="").lower(),
        *encodings(secret),
    ]


def leaked(text: str, secret: str) -> list[str]:
    """The pieces of `secret`'s forms still readable in `text` (case ignored): 12 characters of
    the secret or its URL-encoding, or 12 base64 characters the secret's bytes alone decide."""
    low = text.lower()
    pieces = [secret[:12], quote(secret, safe="")[:12]]
    for encoded in encodings(secret):
        pieces.append(encoded[4:16])  # past what the bytes before it decide
    return [piece for piece in pieces if piece.lower() in low]


@pytest.mark.parametrize("secret", [KEY, ODD_KEY])
@pytest.mark.parametrize("form", range(len(forms(KEY))))
def test_every_form_is_redacted_in_running_text(secret: str, form: int) -> None:
    text = f"the upstream said: {forms(secret)[form]} — and more words."
    scrubbed = scrubber.scrub(text)
    assert REDACTED in scrubbed
    assert leaked(scrubbed, secret) == []
    assert scrubbed.startswith("the upstream said: ")
    assert scrubbed.endswith("and more words.")


def test_a_truncated_key_is_redacted_down_to_twelve_characters_and_no_further() -> None:
    assert scrubber.scrub(f"x {KEY[:12]} y") == f"x {REDACTED} y"
    assert scrubber.scrub(f"x {KEY[:11]} y") == f"x {KEY[:11]} y"
    assert scrubber.scrub(f"{KEY}{KEY}") == REDACTED * 2


def test_overlapping_secrets_are_one_redaction() -> None:
    overlapping = Scrubber(["abcdefghijklmnop", "ijklmnopqrstuvwx"])
    assert overlapping.scrub("<abcdefghijklmnopqrstuvwx>") == f"<{REDACTED}>"


def test_the_key_followed_by_other_text_keeps_that_text() -> None:
    assert scrubber.scrub(f"{KEY}-and-then") == f"{REDACTED}-and-then"
    assert scrubber.scrub(f"{KEY[:20]}!!!") == f"{REDACTED}!!!"


@pytest.mark.parametrize(
    "text",
    [
        "An OpenAI project key looks like sk-proj-… and an Anthropic one like sk-ant-api03-….",
        "Plain prose with words, numbers 1234567890 and base64 like aGVsbG8gd29ybGQ=.",
        "sk-proj-Zq8 is only eleven characters of it",
        "",
        "ünïcödé İstanbul ß text with no key",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrubber.scrub(text) == text
    stream = scrubber.stream()
    assert "".join([*(stream.feed(c) for c in text), stream.finish()]) == text


def test_short_secrets_are_not_scrubbed() -> None:
    assert Scrubber(["abc", "1234567"]).scrub("abc 1234567") == "abc 1234567"
    assert not Scrubber(["abc"])


def streamed(chunks: list[str]) -> tuple[list[str], str]:
    stream = scrubber.stream()
    released = [stream.feed(chunk) for chunk in chunks]
    released.append(stream.finish())
    return released, "".join(released)


@pytest.mark.parametrize("form", range(len(forms(KEY))))
def test_a_secret_split_at_every_offset_is_redacted_as_a_whole(form: int) -> None:
    """A cut within a secret's first three characters lets those out (HOLD_AFTER); anywhere
    else the stream gives exactly what scrubbing the whole text gives."""
    text = f"answer: {forms(KEY)[form]} done"
    start = scrubber.spans(text)[0].start
    loose = range(start + 1, start + HOLD_AFTER)
    whole = scrubber.scrub(text)
    for cut in range(len(text) + 1):
        _, joined = streamed([text[:cut], text[cut:]])
        assert leaked(joined, KEY) == [], cut
        if cut not in loose:
            assert joined == whole, cut
        else:
            assert joined == whole.replace(REDACTED, text[start:cut] + REDACTED, 1), cut
    for first in range(0, len(text), 5):  # three chunks: two boundaries anywhere
        for second in range(first, len(text) + 1, 3):
            _, joined = streamed([text[:first], text[first:second], text[second:]])
            assert leaked(joined, KEY) == [], (first, second)
            if first not in loose and second not in loose:
                assert joined == whole, (first, second)


def test_character_by_character_streams_add_up_to_the_scrubbed_text() -> None:
    text = f"a {KEY} b {ODD_KEY.upper()} c {encodings(KEY)[3]} d"
    released, joined = streamed(list(text))
    assert scrubber.scrub(text) == "a [redacted] b [redacted] c dX[redacted]EhdGFpbA== d"
    # One character at a time, each secret's first three go out before they can be told apart.
    assert joined == "a sk-[redacted] b K+7[redacted] c dXNrL[redacted]EhdGFpbA== d"
    assert len(released[-1]) <= len(" d")  # all but the last characters went out as they came
    assert leaked(joined, KEY) == leaked(joined, ODD_KEY) == []


def test_text_is_held_back_only_while_it_could_start_a_secret() -> None:
    stream = scrubber.stream()
    assert stream.feed("hello world ") == "hello world "
    assert stream.feed("and sk-") == "and sk-"  # three characters are too few to hold
    assert not stream.holding
    assert stream.feed("proj-Zq8Xv2LmT4pW9sK .") == f"{REDACTED} ."  # the rest is still caught
    assert stream.feed("and sk-pr") == "and "  # could be the start of the key
    assert stream.holding
    assert stream.feed("ose") == "sk-prose"  # cannot be any more: released at once
    assert not stream.holding
    assert stream.feed(KEY[:30]) == ""  # a match that may still grow waits
    assert stream.feed(" after.") == f"{REDACTED} after."
    assert stream.feed(KEY[:15]) == ""
    assert stream.finish() == REDACTED  # the stream ended inside a key: still redacted


def test_trees_are_scrubbed_except_opaque_state() -> None:
    tree = {
        "type": "message",
        "content": [{"type": "output_text", "text": f"key {KEY}"}],
        "encrypted_content": f"opaque{KEY}",
        "n": 3,
    }
    scrubbed = scrubber.scrub_tree(tree)
    assert scrubbed["content"][0]["text"] == f"key {REDACTED}"
    assert scrubbed["encrypted_content"] == tree["encrypted_content"]
    assert scrubbed["n"] == 3


async def test_every_route_key_and_sealing_key_is_registered_at_start_up() -> None:
    """The process's scrubber knows the key of each provider's route, the catch-all's, and
    the sealing keys (with the Fernet keys made of them) once they are built."""
    keys = {name: f"{name}-key-{n:02d}-abcdefghijklmnop" for n, name in enumerate(PROVIDERS)}
    routes = tuple(
        ModelRoute(name=name, provider=name, api_key_env=f"KEY_{n}")  # type: ignore[arg-type]
        for n, name in enumerate(PROVIDERS)
    )
    environ = {f"KEY_{n}": keys[name] for n, name in enumerate(PROVIDERS)}
    settings = Settings(upstream_api_key="catch-all-key-abcdefghijklmnop", routes=routes)
    async with httpx.AsyncClient() as http:
        ProviderRegistry(settings, http, environ)
    Sealer(["sealing-secret-one-0123456789", "sealing-secret-two-0123456789"])
    known = registry.process_scrubber().secrets
    assert set(keys.values()) | {"catch-all-key-abcdefghijklmnop"} <= known
    assert {"sealing-secret-one-0123456789", "sealing-secret-two-0123456789"} <= known
    fernet = base64.urlsafe_b64encode(hashlib.sha256(b"sealing-secret-one-0123456789").digest())
    assert fernet.decode() in known
    held = registry.log_scrubber().secrets
    with registry.held(["run-held-credential-0123456789"]):
        assert "run-held-credential-0123456789" in registry.log_scrubber().secrets
    assert registry.log_scrubber().secrets == held


PROVIDERS = ("openai-chat", "anthropic", "gemini", "openai-responses")
