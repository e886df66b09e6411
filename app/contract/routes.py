"""Every route's contract: its body, its answer, its query and the status codes it really has.

One entry per (method, path) of the OpenAPI document; `tests/e2e/test_contract.py` fails when
a route has none, and its schemathesis run fails when a route answers a status, a header or a
body that its entry does not document.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.contract import schemas
from app.wire.common import DeletedObject, ObjectList
from app.wire.conversations import (
    AddItemsRequest,
    Conversation,
    ConversationDeleted,
    CreateConversationRequest,
    UpdateConversationRequest,
)
from app.wire.models import Model, ModelList
from app.wire.prompts import CreatePromptRequest, PromptDeleted, PromptList, PromptObject
from app.wire.responses import CreateResponseRequest, Response
from app.wire.window import CompactedResponse, CompactRequest, InputTokens, InputTokensRequest

# Every route behind a key: no key (401), a bug (500), the database away (503).
AUTHED = frozenset({401, 500, 503})
# Routes that run the model: its provider's faults, as app/providers/base.py maps them.
UPSTREAM = frozenset({429, 502, 504})
# 400 for a bad body or id, 404 for a missing object, 413 for a body over the size limit.
BODY = frozenset({400, 413})


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    answer: Any
    statuses: frozenset[int]
    body: Any = None
    query: tuple[dict[str, Any], ...] = ()
    streams: bool = False  # 200 may be `text/event-stream` (`stream: true`)
    idempotent: bool = False  # honours `Idempotency-Key` (app/idempotency)
    public: bool = False  # needs no key


def _op(answer: Any, *statuses: int | frozenset[int], **options: Any) -> Operation:
    codes: set[int] = set()
    for status in statuses:
        codes.update(status if isinstance(status, frozenset) else {status})
    if not options.get("public"):
        codes |= AUTHED
    return Operation(answer=answer, statuses=frozenset(codes), **options)


CREATE = frozenset({409}) | BODY | {404}
ON_RESPONSE = (400, 404)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("post", "/v1/responses"): _op(
        Response, CREATE, UPSTREAM, body=CreateResponseRequest, streams=True, idempotent=True
    ),
    ("post", "/v1/responses/input_tokens"): _op(InputTokens, BODY, 404, body=InputTokensRequest),
    ("post", "/v1/responses/compact"): _op(
        CompactedResponse, BODY, 404, UPSTREAM, body=CompactRequest
    ),
    ("get", "/v1/responses/{response_id}"): _op(
        Response, *ON_RESPONSE, query=(schemas.INCLUDE, *schemas.RETRIEVE_STREAM), streams=True
    ),
    ("delete", "/v1/responses/{response_id}"): _op(DeletedObject, *ON_RESPONSE),
    ("post", "/v1/responses/{response_id}/cancel"): _op(Response, *ON_RESPONSE),
    ("get", "/v1/responses/{response_id}/input_items"): _op(
        ObjectList, *ON_RESPONSE, query=(schemas.INCLUDE, *schemas.PAGE, schemas.BEFORE)
    ),
    ("post", "/v1/conversations"): _op(
        Conversation, CREATE, body=CreateConversationRequest, idempotent=True
    ),
    ("get", "/v1/conversations/{conversation_id}"): _op(Conversation, 400, 404),
    ("post", "/v1/conversations/{conversation_id}"): _op(
        Conversation, BODY, 404, body=UpdateConversationRequest
    ),
    ("delete", "/v1/conversations/{conversation_id}"): _op(ConversationDeleted, 400, 404),
    ("post", "/v1/conversations/{conversation_id}/items"): _op(
        ObjectList, CREATE, body=AddItemsRequest, query=(schemas.INCLUDE,), idempotent=True
    ),
    ("get", "/v1/conversations/{conversation_id}/items"): _op(
        ObjectList, 400, 404, query=(schemas.INCLUDE, *schemas.PAGE)
    ),
    ("get", "/v1/conversations/{conversation_id}/items/{item_id}"): _op(
        dict[str, Any], 400, 404, query=(schemas.INCLUDE,)
    ),
    ("delete", "/v1/conversations/{conversation_id}/items/{item_id}"): _op(Conversation, 400, 404),
    ("post", "/admin/prompts"): _op(PromptObject, BODY, 404, body=CreatePromptRequest),
    ("get", "/admin/prompts"): _op(PromptList),
    ("get", "/admin/prompts/{prompt_id}"): _op(PromptObject, 400, 404, query=(schemas.VERSION,)),
    ("delete", "/admin/prompts/{prompt_id}"): _op(PromptDeleted, 400, 404),
    ("get", "/v1/models"): _op(ModelList),
    ("get", "/v1/models/{model}"): _op(Model, 404),
    ("get", "/health"): _op(dict[str, str], public=True),
    ("get", "/ready"): _op(dict[str, Any], 503, public=True),
}

# Where an answer's ids lead (OpenAPI links, which stateful clients and tests follow): each
# creating route fills these path parameters, and links to every route that needs exactly them.
LINKS: dict[tuple[str, str], dict[str, str]] = {
    ("post", "/v1/responses"): {"response_id": "$response.body#/id"},
    ("post", "/v1/conversations"): {"conversation_id": "$response.body#/id"},
    ("post", "/v1/conversations/{conversation_id}/items"): {
        "conversation_id": "$request.path.conversation_id",
        "item_id": "$response.body#/data/0/id",
    },
    ("post", "/admin/prompts"): {"prompt_id": "$response.body#/id"},
}
