"""A whole (non-streamed) answer's pieces → output items, in the shapes and order the emitter
makes of the same pieces streamed (app/runs/emitter.py): consecutive text is one message part,
reasoning runs until its block ends, a call or a foreign item ends whatever was open.

Native providers parse their answer into these pieces in the upstream's order, so a streamed
and a whole answer of the same model turn store the same items; a provider that parses its
whole answer into stream deltas hands them to `apply`.
"""

from __future__ import annotations

from typing import Any

from app.providers import tool_mapping, translate
from app.providers.base import (
    Delta,
    ForeignItem,
    ReasoningDelta,
    ReasoningEnd,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
)
from app.providers.catalog import ToolCatalog
from app.wire.items import new_item_id

# Items whose status says whether the answer was whole (an apply_patch_call has no
# `incomplete`; foreign items keep the status their upstream gave them).
_MARKED = frozenset(
    {
        "message",
        "function_call",
        "custom_tool_call",
        "local_shell_call",
        "shell_call",
        "computer_call",
        "tool_search_call",
    }
)


class Assembler:
    def __init__(self, catalog: ToolCatalog) -> None:
        self.output: list[dict[str, Any]] = []
        self._catalog = catalog
        self._open: dict[str, Any] | None = None
        self._call: list[Any] | None = None  # [index, call_id, name, arguments] being gathered

    def apply(self, delta: Delta) -> None:
        """One stream delta; a tool call's pieces gather until something else comes."""
        if isinstance(delta, ToolCallDelta):
            if self._call is not None and self._call[0] == delta.index:
                self._call[3] += delta.arguments
                return
            self._flush()
            self._open = None
            self._call = [delta.index, delta.call_id, delta.name or "", delta.arguments]
            return
        self._flush()
        if isinstance(delta, TextDelta):
            self.text(delta.text)
        elif isinstance(delta, RefusalDelta):
            self.refusal(delta.text)
        elif isinstance(delta, ReasoningDelta):
            self.reasoning(delta.text)
        elif isinstance(delta, ReasoningEnd):
            self.reasoning_end(delta.encrypted_content)
        elif isinstance(delta, ForeignItem):
            self.foreign(delta.item)

    def _flush(self) -> None:
        if self._call is not None:
            _, call_id, name, arguments = self._call
            self._call = None
            self.call(call_id, name, arguments)

    def reasoning(self, text: str) -> None:
        item = self._opened("reasoning")
        if text:
            if not item["content"]:
                item["content"].append({"type": "reasoning_text", "text": ""})
            item["content"][-1]["text"] += text

    def reasoning_end(self, encrypted_content: str | None) -> None:
        item = self._opened("reasoning")
        if encrypted_content is not None:
            item["encrypted_content"] = encrypted_content
        self._open = None

    def text(self, text: str) -> None:
        self._part("output_text", "text", text)

    def refusal(self, text: str) -> None:
        self._part("refusal", "refusal", text)

    def call(self, call_id: str | None, name: str, arguments: str) -> None:
        self._open = None
        call = {"id": call_id, "function": {"name": name, "arguments": arguments}}
        self.output.append(tool_mapping.call_item(call, self._catalog, "completed"))

    def foreign(self, item: dict[str, Any]) -> None:
        self._open = None
        kind = str(item.get("type"))
        self.output.append({**item, "id": new_item_id(kind, str(item.get("id") or "item"))})

    def finish(self, status: str) -> list[dict[str, Any]]:
        """The items, messages and calls marked `status` (completed, or incomplete when the
        answer was cut short), as the chat-completions path marks them."""
        self._flush()
        for item in self.output:
            if item["type"] in _MARKED:
                item["status"] = status
        return self.output

    def _part(self, kind: str, field: str, text: str) -> None:
        if not text:
            return
        item = self._opened("message")
        parts = item["content"]
        if not parts or parts[-1]["type"] != kind:
            parts.append(
                {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
                if kind == "output_text"
                else {"type": "refusal", "refusal": ""}
            )
        parts[-1][field] += text

    def _opened(self, kind: str) -> dict[str, Any]:
        if self._open is None or self._open["type"] != kind:
            if kind == "message":
                self._open = translate.message_item(None, None, "completed")
            else:
                self._open = translate.reasoning_item("")
                self._open["content"] = []
            self.output.append(self._open)
        return self._open
