"""What a hosted tool is: the one protocol every tool Rapport runs itself implements.

A hosted tool (one MCP server, web search) is offered to the model as ordinary functions, so
any chat-completions upstream can use it. When the model calls one of them, the run loop
(app/runs/loop.py) hands the call to its tool, which

1. `open`s it: the output item standing for the call (`mcp_call`, `web_search_call`, or an
   `mcp_approval_request` that ends the response instead of running),
2. `run`s it: does the work, fills the item (output, error, status), emits the item's own
   stream events between `output_item.added` and `.done` (which the loop emits), and returns
   the text the model reads as the call's result on its next turn.

`annotate` runs on the final answer's text (citations). `prepare` runs once per response before the first model call (an MCP server's tool list, which
becomes an `mcp_list_tools` item unless the context already holds one). A tool never raises
for a failed call: the failure is the call's result, stored on its item and told to the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from app.wire.tools import FunctionTool

Event = dict[str, Any]
EventSink = Callable[[Event], None]


class ItemEvents:
    """Stream events about one output item: `item_id` and `output_index` filled in, numbered
    by the run's emitter. Without a sink (a non-streaming run) events are not made at all."""

    def __init__(
        self, sink: EventSink | None, number: Callable[..., Event], item_id: str, index: int
    ) -> None:
        self._sink = sink
        self._number = number
        self._where = {"item_id": item_id, "output_index": index}

    def emit(self, kind: str, **fields: Any) -> None:
        if self._sink is not None:
            self._sink(self._number(kind, **self._where, **fields))


class Opened(msgspec.Struct):
    """A model's call as its tool took it: the item to output, and whether to run it now
    (False: it waits for the client's approval, and the response ends after this turn)."""

    item: dict[str, Any]
    runs: bool = True


class HostedTool(Protocol):
    """One hosted tool of one request."""

    def functions(self) -> list[FunctionTool]:
        """The functions the model is offered for this tool (after `prepare`)."""
        ...

    async def prepare(self, context: list[dict[str, Any]], add_item: AddItem) -> None:
        """Once per response, before the first model call. `add_item` puts an output item
        (with its events) in front of the answer."""
        ...

    def open(self, name: str, arguments: str) -> Opened:
        """The output item for the model's call of function `name`."""
        ...

    async def run(self, item: dict[str, Any], events: ItemEvents) -> str:
        """Do the call; fill `item`; return the text of the result for the model."""
        ...

    def annotate(self, text: str) -> list[dict[str, Any]]:
        """Annotations for the final answer's text (web search: `url_citation`s of the sources
        the answer cites); most tools add none."""
        ...

    async def aclose(self) -> None:
        """Release what the tool holds (connections) when the response's run ends."""
        ...


class AddItem(Protocol):
    """How `prepare` outputs an item: the item, then a coroutine that fills it while its
    events stream (or None for an item that is whole already)."""

    async def __call__(
        self, item: dict[str, Any], fill: Callable[[ItemEvents], Any] | None = None
    ) -> None: ...
