"""The OpenAPI document is the contract: schemathesis drives every operation of it against a
real Rapport on a loopback port, and any 5xx, undocumented status, header or body fails.

The document is the one the app builds (`create_app(...).openapi_schema`); a test checks that
the server serves exactly it. Examples per operation are few (the whole run stays well under a
minute on two cores); a failing case is printed with a curl line that reproduces it.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from app.asgi import create_app
from app.config import Settings
from app.contract.routes import OPERATIONS
from tests.conftest import Project
from tests.harness import RapportServer

# More examples for a deeper (slower) run: RAPPORT_CONTRACT_EXAMPLES=200.
MAX_EXAMPLES = int(os.environ.get("RAPPORT_CONTRACT_EXAMPLES", "12"))

DOCUMENT: dict[str, Any] = create_app(Settings()).openapi_schema.to_schema()
CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
    }
)
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.allow_header_conformance,
    checks.unsupported_method,
]
# Whether invalid data is refused is judged per operation; a workflow is judged on its answers.
STATEFUL_CHECKS = [check for check in CHECKS if check is not checks.negative_data_rejection]


def root(server: RapportServer) -> str:
    return server.base_url.removesuffix("/v1")


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    print_blob=True,
)
def test_every_operation_keeps_the_contract(
    case: schemathesis.Case, rapport: RapportServer, project: Project
) -> None:
    headers = {"authorization": f"Bearer {project.secret}"}
    case.call_and_validate(base_url=root(rapport), headers=headers, checks=CHECKS, timeout=15)


async def test_the_server_serves_the_document_the_tests_check(rapport: RapportServer) -> None:
    async with httpx.AsyncClient() as http:
        served = (await http.get(f"{root(rapport)}/openapi/openapi.json")).json()
    assert served == DOCUMENT


def test_every_route_has_a_contract() -> None:
    """A new route must say what it takes and answers (app/contract/routes.py)."""
    documented = {
        (method, path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in ("get", "post", "delete", "put", "patch")
    }
    assert documented == set(OPERATIONS)


def test_errors_are_openais_error_object_everywhere() -> None:
    envelope = DOCUMENT["components"]["schemas"]["ErrorEnvelope"]
    body = DOCUMENT["components"]["schemas"]["ErrorBody"]
    assert envelope["required"] == ["error"]
    assert body["required"] == ["message", "type", "param", "code"]
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (
                        method,
                        path,
                        status,
                    )


def test_query_parameters_carry_the_servers_constraints() -> None:
    items = {
        p["name"]: p
        for p in DOCUMENT["paths"]["/v1/conversations/{conversation_id}/items"]["get"]["parameters"]
    }
    assert items["order"]["schema"]["enum"] == ["asc", "desc"]
    assert (items["limit"]["schema"]["minimum"], items["limit"]["schema"]["maximum"]) == (1, 100)
    assert items["include"]["schema"]["type"] == "array"
    retrieve = DOCUMENT["paths"]["/v1/responses/{response_id}"]["get"]
    names = {p["name"] for p in retrieve["parameters"]}
    assert {"include", "stream", "starting_after", "include_obfuscation"} <= names
    create = DOCUMENT["paths"]["/v1/responses"]["post"]
    assert set(create["responses"]) >= {"200", "400", "401", "404", "409", "429", "500", "503"}
    assert "text/event-stream" in create["responses"]["200"]["content"]
    body = DOCUMENT["components"]["schemas"]["CreateResponseRequest"]
    assert body["additionalProperties"] is False


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_workflows_keep_the_contract(rapport: RapportServer, project: Project) -> None:
    """Stateful: ids one answer returns fed to the next operation (create → retrieve, list,
    delete), every step held to the same checks."""
    machine = SCHEMA.as_state_machine()
    kwargs = {
        "base_url": root(rapport),
        "headers": {"authorization": f"Bearer {project.secret}"},
        "timeout": 15,
    }

    class Workflow(machine):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return kwargs

        def validate_response(
            self, response: Any, case: schemathesis.Case, *_args: Any, **_kwargs: Any
        ) -> None:
            case.validate_response(response, checks=STATEFUL_CHECKS)

    Workflow.run(
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            # Shrinking replays steps against a server whose state moved on: hypothesis then
            # reports its own FlakyStrategyDefinition instead of the failure that was found.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
