"""WebSocket mode's own wire types: the client's `response.create` event and the `error` event.

Everything else on the socket is an ordinary stream event (`app/runs/emitter.py`), sent as it
would be over SSE.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from app.errors import ErrorBody
from app.wire.responses import CreateResponseRequest


class ClientEvent(msgspec.Struct):
    """Only the `type` of a client event, read first so that an unknown type is named as such
    rather than reported as a body that fails `response.create`'s checks."""

    type: str


class ResponseCreateEvent(
    CreateResponseRequest,
    tag_field="type",
    tag="response.create",
    forbid_unknown_fields=True,
    kw_only=True,
):
    """`response.create`: the create body's fields, plus the envelope fields only a socket has.

    `stream` is implied and `background` is refused (as OpenAI does); `stream_id` (lanes) is
    OpenAI's, decoded only to be refused by name. `generate: false` asks for a warm-up: the
    response is created and completed without calling the model, so that a next turn can
    continue it (Codex sends one as each session opens).
    """

    stream_id: str | None = None
    generate: bool | None = None

    @property
    def warm_up(self) -> bool:
        return self.generate is False

    def create_request(self) -> CreateResponseRequest:
        """The HTTP create body this event stands for, streamed: a plain request, so that
        nothing downstream ever sees (or stores) the envelope fields."""
        fields = {name: getattr(self, name) for name in CreateResponseRequest.__struct_fields__}
        fields["stream"] = True
        return CreateResponseRequest(**fields)


class ErrorEvent(msgspec.Struct, kw_only=True):
    """OpenAI's WebSocket `error` event: the HTTP status the request would have had, and the
    error object an HTTP answer would have carried, in the key order OpenAI sends."""

    type: Literal["error"] = "error"
    status: int
    error: ErrorBody
