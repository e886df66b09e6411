"""The hosted half of the run loop: what happens between two model calls.

Before the first model call, the tools prepare (an MCP server's tool list) and the approvals
the client sent with this turn are carried out. After a model call that called hosted tools,
each call becomes its tool's output item and runs (several at once unless
`parallel_tool_calls` is false); the model's turn and each call's result, as a function call
and its output, join the context of the next model call. Calls past `max_tool_calls` are
ignored, as OpenAI ignores them, and once the budget is spent no hosted tool is offered again,
so the model has to answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from app.observability import record
from app.providers.base import GenerationRequest
from app.providers.catalog import catalog_for
from app.runs.emitter import Emitter, RawCall
from app.secrets.scrubber import Scrubber
from app.tools import approvals
from app.tools.base import EventSink, HostedTool, ItemEvents, Opened
from app.tools.toolset import Toolset
from app.wire.tools import HostedChoice, ToolChoice, ToolChoiceAllowed, ToolChoiceFunction

# Model calls one response may make; the last is offered no hosted tool, so it answers.
MAX_MODEL_CALLS = 16
DECLINED = "The user declined to run this tool call."


class HostedTurns:
    def __init__(
        self,
        toolset: Toolset,
        generation: GenerationRequest,
        emitter: Emitter,
        input_count: int,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.toolset = toolset
        # A tool's output and errors (an MCP server echoing the credentials it was sent) are
        # scrubbed before they are relayed, stored, or read by the model.
        self._scrubber = scrubber or Scrubber(())
        self._base = generation
        self._emitter = emitter
        self._input_count = input_count  # the new input: the context's last items
        self.context: list[dict[str, Any]] = list(generation.context)
        self._calls_left = generation.params.max_tool_calls
        self._parallel = generation.params.parallel_tool_calls is not False
        self.model_calls = 0
        self.awaiting_approval = False

    def next_generation(self) -> GenerationRequest:
        """The next model call: the context so far, and the hosted functions while the
        budget lasts."""
        self.model_calls += 1
        if not self.toolset:
            return self._base
        offered = catalog_for(self._base.tools, self.context)
        client_names = {entry.upstream for entry in offered.entries}
        hosted = self.toolset.offered(client_names)
        self._emitter.hosted_names = self.toolset.names
        spent = self._calls_left == 0 or self.model_calls >= MAX_MODEL_CALLS
        tools = self._base.tools if spent else (*self._base.tools, *hosted)
        params = self._base.params
        if isinstance(params.tool_choice, HostedChoice):
            choice = None if spent else self._forced(params.tool_choice)
            params = msgspec.structs.replace(params, tool_choice=choice)
        return msgspec.structs.replace(self._base, context=self.context, tools=tools, params=params)

    def _forced(self, choice: HostedChoice) -> ToolChoice | None:
        """A hosted `tool_choice` holds for the first model call only (as a function choice
        upstream); after its results the model is free to answer, or it would call forever."""
        names = self.toolset.chosen(choice)
        if self.model_calls > 1 or not names:
            return None
        if len(names) == 1:
            return ToolChoiceFunction(name=names[0])
        allowed = [{"type": "function", "name": name} for name in names]
        return ToolChoiceAllowed(mode="required", tools=allowed)

    def split(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[RawCall]]:
        """A whole answer's items, less its hosted calls (which become their tools' items)."""
        names = self.toolset.names
        kept, calls = [], []
        for item in items:
            if item["type"] == "function_call" and item["name"] in names:
                calls.append(RawCall(item["call_id"], item["name"], item["arguments"]))
            else:
                kept.append(item)
        return kept, calls

    async def start(self, sink: EventSink | None) -> None:
        """Before the first model call: the tools' own items, then approved calls."""
        if not self.toolset:
            return

        async def add_item(item: dict[str, Any], fill: Any = None) -> None:
            index = self._add(item, sink)
            if fill is not None:
                await fill(ItemEvents(sink, self._emitter.event, item["id"], index))
            self._finish(index, sink)

        await self.toolset.prepare(self.context, add_item)
        new_input = self.context[len(self.context) - self._input_count :]
        for decision in approvals.pending(self.context, new_input):
            await self._decide(decision, sink)

    async def _decide(self, decision: approvals.Decision, sink: EventSink | None) -> None:
        request = decision.request
        if not decision.approve:
            reason = f" Reason: {decision.reason}" if decision.reason else ""
            self._remember(request["id"], request["name"], request["arguments"], DECLINED + reason)
            return
        server = self.toolset.server(request["server_label"])
        if server is None:
            message = f"The MCP server '{request['server_label']}' is not in this request's tools."
            self._remember(request["id"], request["name"], request["arguments"], message)
            return
        item = server.call_item(request["name"], request["arguments"], request["id"])
        result = await self._run_one(server, item, self._add(item, sink), sink)
        self._remember(item["id"], item["name"], item["arguments"], result)

    async def run_calls(
        self, calls: list[RawCall], turn: list[dict[str, Any]], sink: EventSink | None
    ) -> None:
        """Run one model turn's hosted calls; their results join the next turn's context."""
        self.context.extend(turn)
        runs: list[tuple[HostedTool, RawCall, Opened]] = []
        for call in calls:
            owner = self.toolset.owner(call.name)
            if owner is None or self._calls_left == 0:
                continue  # past max_tool_calls: ignored
            tool, own_name = owner
            opened = tool.open(own_name, call.arguments)
            if self._calls_left is not None:
                self._calls_left -= 1
            if not opened.runs:
                self._finish(self._add(opened.item, sink), sink)
                self.awaiting_approval = True
                continue
            runs.append((tool, call, opened))
        placed = [(tool, call, o, self._add(o.item, sink)) for tool, call, o in runs]
        jobs = [self._run_one(tool, o.item, index, sink) for tool, _, o, index in placed]
        if self._parallel:
            results = await asyncio.gather(*jobs)
        else:
            results = [await job for job in jobs]
        done = [(call, result) for (_, call, _, _), result in zip(placed, results, strict=True)]
        # One assistant turn of calls, then their results, as chat-completions wants them.
        self.context.extend(_function_call(c.call_id, c.name, c.arguments) for c, _ in done)
        self.context.extend(_function_output(c.call_id, result) for c, result in done)

    async def _run_one(
        self, tool: HostedTool, item: dict[str, Any], index: int, sink: EventSink | None
    ) -> str:
        with record.tool_call(item):
            result = await tool.run(item, ItemEvents(sink, self._emitter.event, item["id"], index))
        self._finish(index, sink)
        return self._scrubber.scrub(result)

    def annotate(self, items: list[dict[str, Any]]) -> None:
        """Citations on the final answer's text parts (a whole answer: no events)."""
        if not self.toolset:
            return
        for item in items:
            for part in item.get("content") or [] if item["type"] == "message" else []:
                if part["type"] == "output_text":
                    part["annotations"].extend(self.toolset.annotate(part["text"]))

    def _remember(self, call_id: str, name: str, arguments: str, result: str) -> None:
        self.context.extend(
            [_function_call(call_id, name, arguments), _function_output(call_id, result)]
        )

    def _add(self, item: dict[str, Any], sink: EventSink | None) -> int:
        index, events = self._emitter.add_item(item)
        if sink is not None:
            for event in events:
                sink(event)
        return index

    def _finish(self, index: int, sink: EventSink | None) -> None:
        item = self._emitter.output[index]
        item.update(self._scrubber.scrub_tree(item))
        event = self._emitter.finish_item(index)
        if sink is not None:
            sink(event)


def _function_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def _function_output(call_id: str, result: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": result}


def has_client_calls(items: list[dict[str, Any]]) -> bool:
    return any(item["type"] in ("function_call", "custom_tool_call") for item in items)
