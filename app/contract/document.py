"""The OpenAPI document served at `/openapi/openapi.json`, made to say what the server does.

Litestar writes the paths, operation ids, summaries and tags from the handlers; what it cannot
know it gets wrong: our handlers decode bodies themselves (so it lists none), it documents 400
with its own error body, and it knows no 404, no 5xx and none of the query parameters that are
read off the request. `apply` rewrites each operation from its entry in `routes.OPERATIONS`.
The hook is `ContractConfig`, an OpenAPIConfig whose document post-processes itself, so every
rendering (JSON, YAML, the UIs) and `app.openapi_schema` get the same document.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPI

from app.contract import schemas
from app.contract.routes import LINKS, OPERATIONS, Operation

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DESCRIPTIONS = {
    200: "The object asked for.",
    400: "Invalid request: a malformed body, an unknown or ill-typed parameter, an id of the "
    "wrong kind, or a request the upstream model refused.",
    401: "No key, or a key that is unknown or revoked.",
    404: "No such object in the caller's project.",
    409: "A request with the same Idempotency-Key is still running; retry after a moment.",
    413: "The request body is larger than the server accepts.",
    429: "The upstream model provider is rate limited; the failed response is stored.",
    500: "A bug of ours. After an accepted create it names the stored id and says "
    "`x-should-retry: false`.",
    502: "The upstream model provider failed; the failed response is stored.",
    503: "The database or queue did not answer; `retry-after` says when to try again.",
    504: "The upstream model provider timed out; the failed response is stored.",
}
REQUEST_ID = {
    "description": "The request's id, to quote in a report.",
    "schema": {"type": "string"},
    "required": True,
}
SHOULD_RETRY = {
    "description": "`false` when a retry would create the object again.",
    "schema": {"type": "string", "enum": ["true", "false"]},
}
RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
_PATH_PARAMETER = re.compile(r"{([^}:]+)")


def apply(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every known operation rewritten from its contract. An operation with
    no entry keeps Litestar's own description, its error bodies put in OpenAI's shape."""
    known = [op.answer for op in OPERATIONS.values()]
    bodies = [op.body for op in OPERATIONS.values() if op.body is not None]
    refs, found = schemas.components(known + bodies)
    schema_of = dict(zip(map(id, known + bodies), refs, strict=True))
    parts = document.setdefault("components", {})
    parts["schemas"] = {**parts.get("schemas", {}), **found}
    parts["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            contract = OPERATIONS.get((method, path))
            if contract is None:
                _errors_in_openai_shape(operation)
                continue
            _rewrite(operation, path, contract, schema_of)
    _link(document["paths"])
    return document


def _link(paths: dict[str, Any]) -> None:
    """Links from each creating route's answer to the routes its ids address."""
    needs = {
        (method, path): (frozenset(_PATH_PARAMETER.findall(path)), operation)
        for path, item in paths.items()
        for method, operation in item.items()
        if method in METHODS
    }
    for source, parameters in LINKS.items():
        if source not in needs:
            continue
        links = {
            operation["operationId"]: {
                "operationId": operation["operationId"],
                "parameters": dict(parameters),
            }
            for target, (wanted, operation) in needs.items()
            if target != source and wanted == set(parameters) and "operationId" in operation
        }
        if links:
            needs[source][1]["responses"]["200"]["links"] = links


def _rewrite(
    operation: dict[str, Any], path: str, contract: Operation, schema_of: dict[int, Any]
) -> None:
    parameters = [_path_parameter(name) for name in _PATH_PARAMETER.findall(path)]
    parameters += [dict(parameter) for parameter in contract.query]
    if contract.idempotent:
        parameters.append(dict(schemas.IDEMPOTENCY_KEY))
    operation["parameters"] = parameters
    if not parameters:
        operation.pop("parameters")
    if contract.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_of[id(contract.body)]}},
        }
    content: dict[str, Any] = {"application/json": {"schema": schema_of[id(contract.answer)]}}
    if contract.streams:
        content["text/event-stream"] = {
            "schema": {"type": "string", "description": "Server-sent events, as OpenAI's."}
        }
    responses: dict[str, Any] = {
        "200": {"description": DESCRIPTIONS[200], "headers": _headers(200), "content": content}
    }
    for status in sorted(contract.statuses):
        responses[str(status)] = _error(status, public=contract.public)
    operation["responses"] = responses
    operation["security"] = [] if contract.public else [{"bearer": []}]


def _path_parameter(name: str) -> dict[str, Any]:
    schema, description = schemas.PATH_PARAMETERS.get(name, ({"type": "string"}, name))
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": dict(schema),
        "description": description,
    }


def _headers(status: int, *, public: bool = False) -> dict[str, Any]:
    headers: dict[str, Any] = {"x-request-id": REQUEST_ID}
    if status >= 500:
        headers["x-should-retry"] = SHOULD_RETRY
    if status in (409, 503):
        headers["retry-after"] = {**RETRY_AFTER, "required": not public}
    return headers


def _error(status: int, *, public: bool = False) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "An error."),
        "headers": _headers(status, public=public),
        "content": {"application/json": {"schema": schemas.error_ref()}},
    }


def _errors_in_openai_shape(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status in list(responses):
        if status.isdigit() and int(status) >= 400:
            responses[status] = _error(int(status))
    for status in (401, 500, 503):
        responses.setdefault(str(status), _error(status))


class _ContractDocument(OpenAPI):
    """Litestar's document, rewritten by `apply` whenever it is rendered to a dict."""

    def to_schema(self) -> dict[str, Any]:
        return apply(super().to_schema())


class ContractConfig(OpenAPIConfig):
    """OpenAPIConfig whose document is the contract (see the module docstring)."""

    def to_openapi_schema(self) -> OpenAPI:
        base = super().to_openapi_schema()
        fields = {field.name: getattr(base, field.name) for field in dataclasses.fields(base)}
        return _ContractDocument(**fields)
