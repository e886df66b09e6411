"""Provider deltas → OpenAI stream events, with sequence numbers, in OpenAI's order.

The emitter owns the output while it is being generated: it opens an item when the first piece
of it arrives, closes the open item before another starts (OpenAI's blocks are sequential, never
interleaved), and at the end knows the output items to store — the same shapes the non-streaming
path builds, from the same builders in `providers/translate.py`.

Calls of hosted tools (names in `hosted_names`) are not streamed as function calls: the emitter
gathers them silently (`take_hosted_calls`), and the run loop outputs them as the tool's own
items (`add_item` … `finish_item`), with the tool's events in between.

Per item the events are:
    message        output_item.added → content_part.added → output_text.delta … / refusal.delta …
                   → output_text.done / refusal.done → content_part.done → output_item.done
    function_call  output_item.added → function_call_arguments.delta … → …arguments.done
                   → output_item.done
    custom_tool_call  output_item.added → custom_tool_call_input.delta → …input.done
                   → output_item.done (the text is whole only when the call is)
    shell_call     output_item.added → per command: shell_call_command.added → .delta → .done
                   → output_item.done
    other calls of client-executed tools (local_shell_call, apply_patch_call, computer_call,
    tool_search_call): output_item.added → output_item.done, both once the call is whole,
    because their fields are parsed from the call's complete JSON arguments
    reasoning      output_item.added → content_part.added(reasoning_text) → reasoning_text.delta …
                   → reasoning_text.done → content_part.done → output_item.done; a provider's
                   `ReasoningEnd` ends it with its opaque state (a signature) in
                   `encrypted_content`, or makes an item of the state alone (added → done)
    foreign items  (hosted tools an upstream ran, a Responses upstream's reasoning) arrive
                   whole: output_item.added → output_item.done, under an id of Rapport's
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from app.providers import client_tools, logprobs, tool_mapping, translate
from app.providers.base import (
    Delta,
    ForeignItem,
    ReasoningDelta,
    ReasoningEnd,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
)
from app.providers.catalog import Entry, ToolCatalog
from app.runs.content_parts import PART_EVENTS, empty_part
from app.wire.items import new_item_id

Event = dict[str, Any]


class RawCall(msgspec.Struct):
    """A model's call of a hosted tool's function, as the upstream sent it."""

    call_id: str
    name: str
    arguments: str = ""


class Emitter:
    def __init__(
        self,
        *,
        obfuscate: bool = True,
        max_tool_calls: int | None = None,
        first_sequence: int = 0,
        tools: ToolCatalog | None = None,
    ) -> None:
        self.output: list[dict[str, Any]] = []
        # What each upstream function name stands for. Custom and client-executed tools
        # travel upstream as functions: their JSON arguments are gathered, and their events
        # go out when the call is whole.
        self._tools = tools or ToolCatalog([])
        self._gathered = ""
        self._gathering: Entry | None = None
        self._sequence = first_sequence
        self._obfuscate = obfuscate
        self._max_tool_calls = max_tool_calls
        self._open: dict[str, Any] | None = None
        self._open_tool_index: int | None = None
        self._tool_calls_seen = 0
        self.hosted_names: frozenset[str] = frozenset()  # set by the run loop each turn
        self._hosted_calls: list[RawCall] = []
        self._hosted_index: int | None = None

    def event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def on_delta(self, delta: Delta) -> list[Event]:
        if isinstance(delta, TextDelta):
            return self._part_delta("message", "output_text", delta.text, delta.logprobs)
        if isinstance(delta, RefusalDelta):
            return self._part_delta("message", "refusal", delta.text)
        if isinstance(delta, ReasoningDelta):
            return self._part_delta("reasoning", "reasoning_text", delta.text)
        if isinstance(delta, ReasoningEnd):
            return self._reasoning_end(delta.encrypted_content)
        if isinstance(delta, ForeignItem):
            return self._foreign(delta.item)
        return self._tool_delta(delta)

    def _reasoning_end(self, encrypted_content: str | None) -> list[Event]:
        """The open reasoning item (or a new, empty one) gets the upstream's state and ends,
        so the next reasoning block starts an item of its own."""
        events: list[Event] = []
        item = self._open
        if item is None or item["type"] != "reasoning":
            events.extend(self.close("completed"))
            item = self._open_item("reasoning", events)
        if encrypted_content is not None:
            item["encrypted_content"] = encrypted_content
        events.extend(self.close("completed"))
        return events

    def _foreign(self, item: dict[str, Any]) -> list[Event]:
        """A whole item the upstream made, added and done at once under an id of ours."""
        events = self.close("completed")
        kind = str(item.get("type"))
        owned = {**item, "id": new_item_id(kind, str(item.get("id") or "item"))}
        index = len(self.output)
        self.output.append(owned)
        added = {**owned, "status": "in_progress"} if "status" in owned else owned
        events.append(self.event("response.output_item.added", output_index=index, item=added))
        events.append(self.event("response.output_item.done", output_index=index, item=owned))
        return events

    def close(self, status: str) -> list[Event]:
        """Done events for the open item, which ends with `status` (completed/incomplete)."""
        item = self._open
        if item is None:
            return []
        self._open = None
        self._open_tool_index = None
        if self._gathering is not None:
            return self._close_gathered(self._gathering, item, status)
        index = len(self.output) - 1
        events: list[Event] = []
        if item["type"] == "custom_tool_call":
            events.extend(self._close_custom(item, index))
        elif item["type"] == "function_call":
            events.append(
                self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                    name=item["name"],
                )
            )
        else:
            for content_index, part in enumerate(item["content"]):
                events.extend(self._close_part(item, index, content_index, part))
        if "status" in item:  # reasoning items carry no status, as on OpenAI's wire
            item["status"] = status
        events.append(self.event("response.output_item.done", output_index=index, item=item))
        return events

    def _part_delta(
        self, item_type: str, part_type: str, text: str, tokens: tuple[dict[str, Any], ...] = ()
    ) -> list[Event]:
        events: list[Event] = []
        item = self._open
        if item is None or item["type"] != item_type:
            events.extend(self.close("completed"))
            item = self._open_item(item_type, events)
        parts = item["content"]
        if not parts or parts[-1]["type"] != part_type:
            part = empty_part(part_type)
            parts.append(part)
            events.append(
                self.event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=len(self.output) - 1,
                    content_index=len(parts) - 1,
                    part=empty_part(part_type),  # its own lists: the part's grow in place
                )
            )
        part = parts[-1]
        field = PART_EVENTS[part_type].field
        part[field] += text
        extra: dict[str, Any] = {}
        if part_type == "output_text":
            part["logprobs"].extend(tokens)
            extra["logprobs"] = logprobs.for_event(tokens)
        events.append(
            self._delta_event(
                PART_EVENTS[part_type].delta,
                item_id=item["id"],
                output_index=len(self.output) - 1,
                content_index=len(parts) - 1,
                delta=text,
                **extra,
            )
        )
        return events

    def _tool_delta(self, delta: ToolCallDelta) -> list[Event]:
        events: list[Event] = []
        if self._hosted_calls and self._hosted_index == delta.index:
            self._hosted_calls[-1].arguments += delta.arguments
            return events
        if delta.name in self.hosted_names:
            events.extend(self.close("completed"))
            self._hosted_calls.append(
                RawCall(delta.call_id or "", delta.name or "", delta.arguments)
            )
            self._hosted_index = delta.index
            return events
        item = self._open
        calls = ("function_call", "custom_tool_call")
        in_call = item is not None and (item["type"] in calls or self._gathering is not None)
        if item is None or not in_call or self._open_tool_index != delta.index:
            if self._max_tool_calls is not None and self._tool_calls_seen >= self._max_tool_calls:
                return []  # max_tool_calls: further calls are ignored, as at OpenAI
            events.extend(self.close("completed"))
            self._tool_calls_seen += 1
            self._open_tool_index = delta.index
            item = self._open_call(delta, events)
        if self._gathering is not None or item["type"] == "custom_tool_call":
            self._gathered += delta.arguments
            return events
        if delta.name and not item["name"]:
            item["name"] = delta.name
        if delta.arguments:
            item["arguments"] += delta.arguments
            events.append(
                self._delta_event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=len(self.output) - 1,
                    delta=delta.arguments,
                )
            )
        return events

    def _open_call(self, delta: ToolCallDelta, events: list[Event]) -> dict[str, Any]:
        """The item of a new call. A client-executed tool's is held out of the output until it
        is whole (a stream cut short leaves no half-parsed call behind)."""
        entry = self._tools.entry(delta.name)
        self._gathered = ""
        if entry is not None and entry.kind not in ("function", "custom"):
            self._gathering = entry
            held = {"type": entry.kind, "call_id": delta.call_id or ""}
            self._open = held
            return held
        if entry is not None and entry.kind == "custom":
            item = tool_mapping.custom_tool_call_item(
                delta.call_id or "", entry.name, "", "in_progress", entry.namespace
            )
        else:
            call = {"id": delta.call_id, "function": {"name": delta.name, "arguments": ""}}
            item = tool_mapping.function_call_item(call, "in_progress", entry)
        self._add(item, events)
        return item

    def _close_gathered(self, entry: Entry, held: dict[str, Any], status: str) -> list[Event]:
        call_id = tool_mapping.usable_call_id(held["call_id"])
        item = client_tools.call_item(entry, call_id, self._gathered, status)
        self._gathering = None
        index = len(self.output)
        self.output.append(item)
        added = {**item, "status": "in_progress"}
        events = [self.event("response.output_item.added", output_index=index, item=added)]
        if item["type"] == "shell_call":
            events += self._shell_commands(item["action"]["commands"], index)
        events.append(self.event("response.output_item.done", output_index=index, item=item))
        return events

    def _shell_commands(self, commands: list[str], index: int) -> list[Event]:
        """OpenAI's shell events carry no item_id, only the output and command indexes."""
        events: list[Event] = []
        for number, command in enumerate(commands):
            where = {"output_index": index, "command_index": number}
            events.append(self.event("response.shell_call_command.added", **where, command=""))
            events.append(
                self._delta_event("response.shell_call_command.delta", **where, delta=command)
            )
            events.append(self.event("response.shell_call_command.done", **where, command=command))
        return events

    def _close_custom(self, item: dict[str, Any], index: int) -> list[Event]:
        item["input"] = text = tool_mapping.custom_input(self._gathered)
        where = {"item_id": item["id"], "output_index": index}
        return [
            self._delta_event("response.custom_tool_call_input.delta", **where, delta=text),
            self.event("response.custom_tool_call_input.done", **where, input=text),
        ]

    def whole_item(self, item: dict[str, Any]) -> list[Event]:
        """An item made whole before the answer streams (a compaction): added, then done."""
        index, events = self.add_item(item)
        return [*events, self.finish_item(index)]

    def add_item(self, item: dict[str, Any]) -> tuple[int, list[Event]]:
        """An item the run loop makes (a hosted call): added now, finished by `finish_item`."""
        events: list[Event] = []
        self._add(item, events)
        self._open = None
        return len(self.output) - 1, events

    def finish_item(self, index: int) -> Event:
        return self.event("response.output_item.done", output_index=index, item=self.output[index])

    def take_hosted_calls(self) -> list[RawCall]:
        """The hosted calls of the turn that just ended (call indices restart each turn)."""
        calls, self._hosted_calls, self._hosted_index = self._hosted_calls, [], None
        return calls

    def annotate_open_text(self, annotations: list[dict[str, Any]]) -> list[Event]:
        """Annotations (citations) on the open message's last text part, each with its
        event, before the part's done event shows them."""
        item = self._open
        if item is None or item["type"] != "message" or not annotations:
            return []
        parts = item["content"]
        if not parts or parts[-1]["type"] != "output_text":
            return []
        part, events = parts[-1], []
        for annotation in annotations:
            part["annotations"].append(annotation)
            events.append(
                self.event(
                    "response.output_text.annotation.added",
                    item_id=item["id"],
                    output_index=len(self.output) - 1,
                    content_index=len(parts) - 1,
                    annotation_index=len(part["annotations"]) - 1,
                    annotation=annotation,
                )
            )
        return events

    def open_text(self) -> str:
        """The text of the open message (what annotations are computed on)."""
        item = self._open
        if item is None or item["type"] != "message" or not item["content"]:
            return ""
        part = item["content"][-1]
        return str(part.get("text", "")) if part["type"] == "output_text" else ""

    def _open_item(self, item_type: str, events: list[Event]) -> dict[str, Any]:
        if item_type == "message":
            item = translate.message_item(None, None, "in_progress")
        else:
            item = translate.reasoning_item("")
            item["content"] = []
        self._add(item, events)
        return item

    def _add(self, item: dict[str, Any], events: list[Event]) -> None:
        self.output.append(item)
        self._open = item
        events.append(
            self.event(
                "response.output_item.added",
                output_index=len(self.output) - 1,
                item={
                    key: list(value) if isinstance(value, list) else value
                    for key, value in item.items()
                },
            )
        )

    def _close_part(
        self, item: dict[str, Any], index: int, content_index: int, part: dict[str, Any]
    ) -> list[Event]:
        kinds = PART_EVENTS[part["type"]]
        extra: dict[str, Any] = {}
        if part["type"] == "output_text":
            extra["logprobs"] = logprobs.for_event(part["logprobs"])
        where = {"item_id": item["id"], "output_index": index, "content_index": content_index}
        return [
            self.event(kinds.done, **where, **{kinds.field: part[kinds.field]}, **extra),
            self.event("response.content_part.done", **where, part=dict(part)),
        ]

    def _delta_event(self, kind: str, **fields: Any) -> Event:
        if self._obfuscate:
            # OpenAI pads deltas with random characters so that event sizes do not reveal
            # token lengths to someone watching encrypted traffic.
            fields["obfuscation"] = secrets.token_urlsafe(1 + secrets.randbelow(12))[:16]
        return self.event(kind, **fields)
