"""Encoders and decoders, built once, and msgspec's errors turned into OpenAI's 400s.

msgspec reports `Expected `int` >= 16 - at `$.max_output_tokens``; OpenAI reports
`Invalid 'max_output_tokens': integer below minimum value. …` with `param` and a `code`. The
translation lives here so that every decoder in Rapport fails the same way.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from app import offload
from app.errors import InvalidRequest
from app.wire import depth

T = TypeVar("T")

encoder = msgspec.json.Encoder()
_decoders: dict[type, msgspec.json.Decoder[Any]] = {}

_AT = re.compile(r"^(?P<what>.*?)(?: - at (?P<key>`key` in )?`(?P<path>[^`]*)`)?$", re.DOTALL)
_ENUM = re.compile(r"^Invalid enum value (?P<value>.*)$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_BOUND = re.compile(
    r"^Expected `(?P<kind>int|float|str|array|object)`(?P<key> key)? (?P<rel>of length )?"
    r"(?P<op>[<>]=?) (?P<limit>[-0-9.e]+)$"
)
_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")

_BOUND_CODES = {
    ("int", ">"): "integer_below_min_value",
    ("int", "<"): "integer_above_max_value",
    ("float", ">"): "decimal_below_min_value",
    ("float", "<"): "decimal_above_max_value",
    ("str", ">"): "string_below_min_length",
    ("str", "<"): "string_above_max_length",
    ("array", ">"): "array_below_min_length",
    ("array", "<"): "array_above_max_length",
    ("object", ">"): "object_below_min_properties",
    ("object", "<"): "object_above_max_properties",
}
_BOUND_WORDS = {
    "integer_below_min_value": "integer below minimum value",
    "integer_above_max_value": "integer above maximum value",
    "decimal_below_min_value": "decimal below minimum value",
    "decimal_above_max_value": "decimal above maximum value",
    "string_below_min_length": "string too short",
    "string_above_max_length": "string too long",
    "array_below_min_length": "array too short",
    "array_above_max_length": "array too long",
    "object_below_min_properties": "too few properties",
    "object_above_max_properties": "too many properties",
}


async def decode_off_loop(body: bytes, into: type[T]) -> T:
    """`decode`, in a worker thread when the body is big: the nesting check and the
    conversion of 100,000 items take a good part of a second (app/offload.py)."""
    return await offload.off_loop(lambda: decode(body, into), body)


def decode(body: bytes, into: type[T]) -> T:
    """Decode a JSON request body, or raise the InvalidRequest OpenAI would send."""
    decoder = _decoders.get(into)
    if decoder is None:
        decoder = _decoders[into] = msgspec.json.Decoder(into)
    if not body.strip():
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The body is empty; "
            "send a JSON object.",
            code="invalid_json",
        )
    depth.check(body)
    try:
        return decoder.decode(body)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise invalid_request_from(exc) from None
    except msgspec.DecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
            code="invalid_json",
        ) from None


def convert(value: Any, into: type[T], *, at: str) -> T:
    """Convert an already-decoded JSON value (one input item, one tool) with its `param` path."""
    try:
        return msgspec.convert(value, into)
    except msgspec.ValidationError as exc:
        raise invalid_request_from(exc, prefix=at) from None


def invalid_request_from(exc: msgspec.ValidationError, prefix: str = "") -> InvalidRequest:
    """Translate one msgspec validation message into OpenAI's wording, code and param."""
    match = _AT.match(str(exc))
    assert match is not None  # the pattern accepts any string
    what, path = match["what"], (match["path"] or "$").replace("[...]", "")
    param = _param(prefix, path)
    if match["key"]:
        what = what.replace("Expected `str` of length", "Expected `str` key of length")

    if found := _MISSING.match(what):
        name = _join(param, found["field"])
        return InvalidRequest(
            f"Missing required parameter: '{name}'.",
            param=name,
            code="missing_required_parameter",
        )
    if found := _UNKNOWN.match(what):
        name = _join(param, found["field"])
        return InvalidRequest(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    if found := _BOUND.match(what):
        code = _BOUND_CODES[(found["kind"], found["op"][0])]
        words = _BOUND_WORDS[code]
        relation = "at least" if found["op"].startswith(">") else "at most"
        subject = "a key" if found["key"] else "a value"
        return InvalidRequest(
            f"Invalid '{param}': {words}. Expected {subject} {relation} {_number(found['limit'])}"
            f"{' in length' if found['rel'] else ''}.",
            param=param or None,
            code=code,
        )
    if found := _TYPE.match(what):
        return InvalidRequest(
            f"Invalid type for '{param}': expected {_kind(found['expected'])}, "
            f"but got {_kind(found['got'])} instead.",
            param=param or None,
            code="invalid_type",
        )
    if found := _ENUM.match(what):
        return InvalidRequest(
            f"Invalid value for '{param}': {found['value']}.",
            param=param or None,
            code="invalid_value",
        )
    return InvalidRequest(
        f"Invalid value for '{param}': {what.rstrip('.')}.",
        param=param or None,
        code="invalid_value",
    )


def invalid_type(param: str, expected: str, got: object) -> InvalidRequest:
    """OpenAI's wording for a JSON value of the wrong type, found outside msgspec."""
    kind = _JSON_KINDS.get(type(got), type(got).__name__)
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {kind} instead.",
        param=param,
        code="invalid_type",
    )


_JSON_KINDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a decimal",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _param(prefix: str, path: str) -> str:
    tail = path.removeprefix("$")
    if prefix:
        return prefix + tail
    return tail.removeprefix(".")


def _join(param: str, field: str) -> str:
    return f"{param}.{field}" if param else field


_KINDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a decimal",
    "bool": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def _kind(name: str) -> str:
    return " or ".join(_KINDS.get(part.strip(), part.strip()) for part in name.split("|"))


def _number(text: str) -> str:
    value = float(text)
    return str(int(value)) if value.is_integer() else text
