"""How many tokens an item, the instructions or the tool list take in a model's context.

Text is counted exactly with the model's encoding. The framing around it follows OpenAI's
published chat accounting (every message costs its text plus 3 tokens of framing and 1 for the
role; a reply is primed with 3 more), which matches what OpenAI bills to within a few tokens a
message. What the model sees but Rapport cannot tokenize is estimated, as stated here:

- an image costs 85 tokens at `detail: "low"` and 765 otherwise (OpenAI's figure for a
  1024x1024 image at high detail; Rapport does not fetch images to measure them);
- a file costs a token per 4 characters of what is sent for it (its data, URL or id);
- a tool definition costs the tokens of its JSON; an item of any other type, those of its body.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import tiktoken

from app.tokens import encodings

MESSAGE_FRAMING = 4  # <|start|>{role}\n … <|end|>
REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>
IMAGE_LOW_DETAIL = 85
IMAGE_DEFAULT = 765
CHARACTERS_PER_FILE_TOKEN = 4

_TEXT_FIELDS = ("text", "refusal", "output")


class TokenCounter:
    """Counts for one encoding; free to make (the encoding is built once per process, on its
    first use or by `encodings.warm()` at start-up)."""

    def __init__(self, encoding_name: str) -> None:
        self.encoding_name = encoding_name
        self._encoding: tiktoken.Encoding | None = None

    def text(self, text: str) -> int:
        if not text:
            return 0
        if self._encoding is None:
            self._encoding = encodings.get(self.encoding_name)
        # `encode_ordinary`: text that happens to spell a special token is plain text here.
        return len(self._encoding.encode_ordinary(text))

    def item(self, body: dict[str, Any]) -> int:
        """The tokens one stored item takes when it is replayed as context."""
        kind = body.get("type")
        if kind == "message":
            return MESSAGE_FRAMING + self._content(body.get("content"))
        if kind == "function_call":
            return (
                MESSAGE_FRAMING
                + self.text(body.get("name", ""))
                + self.text(body.get("arguments", ""))
            )
        if kind in ("function_call_output", "custom_tool_call_output"):
            return MESSAGE_FRAMING + self._content(body.get("output"))
        if kind == "custom_tool_call":
            return (
                MESSAGE_FRAMING + self.text(body.get("name", "")) + self.text(body.get("input", ""))
            )
        if kind == "reasoning":
            parts = [*(body.get("summary") or []), *(body.get("content") or [])]
            return self._content(parts)
        return MESSAGE_FRAMING + self._json({k: v for k, v in body.items() if k != "id"})

    def items(self, bodies: Iterable[dict[str, Any]]) -> list[int]:
        return [self.item(body) for body in bodies]

    def instructions(self, instructions: str | None) -> int:
        return MESSAGE_FRAMING + self.text(instructions) if instructions else 0

    def tools(self, tools: Sequence[Any] | None) -> int:
        return sum(self._json(msgspec.to_builtins(tool)) for tool in tools or ())

    def _content(self, content: Any) -> int:
        if content is None:
            return 0
        if isinstance(content, str):
            return self.text(content)
        return sum(self._part(part) for part in content if isinstance(part, dict))

    def _part(self, part: dict[str, Any]) -> int:
        kind = part.get("type")
        if kind == "input_image":
            return IMAGE_LOW_DETAIL if part.get("detail") == "low" else IMAGE_DEFAULT
        if kind == "input_file":
            sent = part.get("file_data") or part.get("file_url") or part.get("file_id") or ""
            return -(-len(sent) // CHARACTERS_PER_FILE_TOKEN)
        for field in _TEXT_FIELDS:
            value = part.get(field)
            if isinstance(value, str):
                return self.text(value)
        return self._json(part)

    def _json(self, value: Any) -> int:
        return self.text(msgspec.json.encode(value).decode())
