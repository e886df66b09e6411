"""Validate what Rapport returns against OpenAI's own OpenAPI schema (shared/reference)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator

SPEC_CANDIDATES = (
    os.environ.get("RAPPORT_OPENAPI_SPEC", ""),
    str(Path(__file__).resolve().parents[2] / "shared" / "reference" / "openai-openapi.yml"),
    str(Path(__file__).resolve().parents[1] / "shared" / "reference" / "openai-openapi.yml"),
)


@functools.cache
def _components() -> dict[str, Any]:
    for candidate in SPEC_CANDIDATES:
        if candidate and Path(candidate).is_file():
            with open(candidate, encoding="utf-8") as handle:
                spec = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            return {"components": spec["components"]}
    raise FileNotFoundError("openai-openapi.yml not found; set RAPPORT_OPENAPI_SPEC")


@functools.cache
def _validator(schema_name: str) -> OAS31Validator:
    schema = {**_components(), "$ref": f"#/components/schemas/{schema_name}"}
    return OAS31Validator(schema)


# Where OpenAI's real traffic differs from its schema, Rapport follows the wire: real responses
# carry `"user": null` although the schema types `user` as a plain string.
WIRE_OVER_SCHEMA = {("user",): None}


def schema_errors(schema_name: str, document: Any) -> list[str]:
    """Every way `document` breaks OpenAI's `schema_name`, as readable strings (empty = valid)."""
    errors: list[ValidationError] = [
        error
        for error in _validator(schema_name).iter_errors(document)
        if not (
            tuple(error.absolute_path) in WIRE_OVER_SCHEMA
            and error.instance is WIRE_OVER_SCHEMA[tuple(error.absolute_path)]
        )
    ]
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}" for error in errors]
