"""Input-token counts and standalone compaction: a would-be context, built but never stored.

Both take a create's context-shaping parameters, read the history exactly as a create would
(owner-scoped; a conversation is read without taking its lock, since nothing is appended) and
build the context with the same code, so a count here is the count a create would fit.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app import ids
from app.auth import Caller
from app.context import assembly, compaction, fitting, history, window
from app.context.fitting import Fitter
from app.context.history import History
from app.db.base import utcnow
from app.db.session import unit_of_work
from app.errors import InvalidRequest
from app.providers.base import ProviderError
from app.responses import references
from app.responses.tool_checks import dropped_tools
from app.responses.validation import PreparedRequest, prepare
from app.runtime import Runtime
from app.wire.items import stored_body
from app.wire.responses import CreateResponseRequest
from app.wire.window import CompactedResponse, CompactRequest, InputTokens, InputTokensRequest

# Counting without a model: the catch-all route, the fallback encoding and no known window.
UNSPECIFIED_MODEL = "unspecified"


class WindowService:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def input_tokens(self, caller: Caller, body: InputTokensRequest) -> InputTokens:
        """The tokens the context would take; with `truncation: "auto"`, after truncation.
        An over-long context is counted, not refused: finding that out is what this is for."""
        request = CreateResponseRequest(
            model=body.model or UNSPECIFIED_MODEL,
            input=body.input,
            previous_response_id=body.previous_response_id,
            conversation=body.conversation,
            instructions=body.instructions,
            tools=body.tools,
            tool_choice=body.tool_choice,
            parallel_tool_calls=body.parallel_tool_calls,
            text=body.text,
            reasoning=body.reasoning,
            truncation=body.truncation,
        )
        prepared, fitter = self._prepare(request)
        if request.truncation != "auto":
            fitter.budget = msgspec.structs.replace(fitter.budget, limit=None)
        past, input_bodies = await self._read(caller, prepared, fitter)
        built = fitter.window(past, input_bodies)
        return InputTokens(input_tokens=built.input_tokens)

    async def compact(self, caller: Caller, body: CompactRequest) -> CompactedResponse:
        """OpenAI's standalone compaction: every user message, then one compaction item, for the
        client to send as the next input. Nothing is stored."""
        if not isinstance(body.model, str) or not body.model:
            raise InvalidRequest(
                "Missing required parameter: 'model'.",
                param="model",
                code="missing_required_parameter",
            )
        request = CreateResponseRequest(
            model=body.model,
            input=body.input,
            previous_response_id=body.previous_response_id,
            truncation="auto",
        )
        prepared, fitter = self._prepare(request)
        past, input_bodies = await self._read(caller, prepared, fitter)
        read_summary = compaction.summary_reader(fitter.sealer, fitter.counter)
        earlier, current = assembly.entries(fitter.counter, past, input_bodies)
        rendered = window.render_compactions(earlier + current, read_summary)
        summarized = assembly.for_summary(fitter.counter, fitter.budget, rendered)
        _, provider = self._runtime.providers.resolve(prepared.model)
        try:
            summary, usage = await compaction.summarize(
                provider, prepared.model, summarized, body.instructions
            )
        except ProviderError as exc:
            raise exc.api_error(None) from None
        item = compaction.new_item(fitter.sealer, summary, prepared.model)
        return CompactedResponse(
            id=ids.new_id(ids.RESPONSE),
            created_at=int(utcnow().timestamp()),
            output=[*_user_messages(rendered), item],
            usage=usage,
        )

    def _prepare(self, request: CreateResponseRequest) -> tuple[PreparedRequest, Fitter]:
        prepared = prepare(request, dropped_tools(self._runtime.providers, request.model))
        route, _ = self._runtime.providers.resolve(prepared.model)
        fitter = fitting.for_request(
            request, prepared.model, route, self._runtime.sealer, prepared.tools
        )
        return prepared, fitter

    async def _read(
        self, caller: Caller, prepared: PreparedRequest, fitter: Fitter
    ) -> tuple[History, list[dict[str, Any]]]:
        input_bodies = [stored_body(item) for item in prepared.input_items]
        await fitter.precount(input_bodies)
        async with unit_of_work(self._runtime.sessions) as session:
            input_bodies = await references.resolve(session, caller.project_id, input_bodies)
            if prepared.conversation_id is not None:
                past = await history.conversation_snapshot(
                    session, caller.project_id, prepared.conversation_id, fitter.encoding
                )
            else:
                past = await history.chain(
                    session,
                    caller.project_id,
                    prepared.request.previous_response_id,
                    fitter.encoding,
                )
        assembly.check_tool_pairing(past.bodies + input_bodies)
        return past, input_bodies


def _user_messages(rendered: list[window.Entry]) -> list[dict[str, Any]]:
    """The user messages, kept verbatim (content as input parts), each with an id."""
    kept = []
    for entry in rendered:
        body = entry.body
        if body.get("type", "message") == "message" and body.get("role") == "user":
            kept.append({"id": body.get("id") or ids.new_id(ids.MESSAGE), **body})
    return kept
