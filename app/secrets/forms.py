"""The forms a secret can take in text, and how short a piece of each still counts as it.

An upstream that quotes the key it was sent may quote it whole, cut short, upper-cased,
base64-encoded (an `Authorization: Basic` header, a JSON dump of bytes) or URL-encoded (a query
string). Each form is kept lower-cased (matching ignores case) with the length of the shortest
prefix of it that is redacted:

- the secret itself and its URL-encodings: `MINIMUM_PREFIX` (12) characters of it, or all of a
  shorter secret. Twelve characters of a random key do not occur in ordinary text by chance,
  and a key's fixed prefix (`sk-proj-`, `sk-ant-api03-`) is shorter than that, so talk *about*
  keys is left alone;
- its base64 encodings, standard and URL-safe, at the three alignments the secret can have
  inside an encoded stream (it starts a 3-byte group, or follows one or two bytes of it): only
  the characters that depend on the secret's bytes alone, `MINIMUM_ENCODED_PREFIX` (16) of
  them at least (12 bytes of the secret), or all of a shorter run.

Secrets shorter than `SHORTEST_SECRET` (8) characters are not scrubbed: they cannot be told from
ordinary words.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import msgspec

MINIMUM_PREFIX = 12
MINIMUM_ENCODED_PREFIX = 16
SHORTEST_SECRET = 8
# Lower-cases ASCII letters only: the text keeps its length, so positions found in the lowered
# text are positions in the original (str.lower can lengthen some non-ASCII characters).
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Form(msgspec.Struct, frozen=True):
    """One form of a secret: its text (lower-cased) and how many leading characters of it
    make a match."""

    text: str
    minimum: int

    @property
    def head(self) -> str:
        return self.text[: self.minimum]


def lowered(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(ASCII_LOWER)


def forms_of(secret: str) -> list[Form]:
    """Every form of `secret` to look for, without repeats; none for a secret too short."""
    if len(secret) < SHORTEST_SECRET:
        return []
    plain = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    found = {Form(lowered(text), min(len(text), MINIMUM_PREFIX)) for text in plain}
    raw = secret.encode()
    for offset in range(3):
        encoded = _encoded_run(raw, offset)
        minimum = min(len(encoded), MINIMUM_ENCODED_PREFIX)
        for text in (encoded, encoded.replace("+", "-").replace("/", "_")):
            found.add(Form(lowered(text), minimum))
    return sorted(found, key=lambda form: form.text)


def _encoded_run(raw: bytes, offset: int) -> str:
    """The base64 characters that `raw` alone decides when `offset` unknown bytes precede it
    and unknown bytes may follow: character i holds bits [6i, 6i+6) of the stream."""
    encoded = base64.b64encode(bytes(offset) + raw).decode().rstrip("=")
    first = -(-8 * offset // 6)  # the first character whose bits all lie inside `raw`
    last = 8 * (offset + len(raw)) // 6  # one past the last such character
    return encoded[first:last]
