"""Content parts of the Responses API as the pieces native upstreams take them apart into:
data URLs split into media type and base64 data, and text gathered from parts."""

from __future__ import annotations

import base64
import binascii
from typing import Any


def data_url(url: object) -> tuple[str, str] | None:
    """`data:<media type>;base64,<data>` as (media type, data); None for any other URL."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not data:
        return None
    return media_type or "application/octet-stream", data


def decoded_text(data: str) -> str | None:
    """Base64 data as UTF-8 text, when it is that."""
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def text_of(content: object) -> str:
    """The text of a message's or output's content: a string, or its text-bearing parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        str(part.get("text") or part.get("refusal") or "")
        for part in content
        if isinstance(part, dict)
    )


def image_url(part: dict[str, Any]) -> str | None:
    url = part.get("image_url")
    return url if isinstance(url, str) and url else None
