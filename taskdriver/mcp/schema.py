"""JSON Schemas for tool results, written from the client's TypedDicts.

The client's `types` module already states what each endpoint answers; an `outputSchema`
is that same statement in JSON Schema, so it is derived here rather than written a second
time. Only the typing forms those TypedDicts use are supported (str, int, float, bool, None,
Any, Literal, unions, list, dict and nested TypedDicts); anything else is a programming
error caught when the server is built, not when a tool is called.
"""

from __future__ import annotations

import types
from typing import (
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                           type(None): "null"}


def object_schema(shape: Any) -> dict[str, Any]:
    """The JSON Schema of a TypedDict: its fields, which of them are required, and its
    docstring as the description. Unlisted fields are allowed: a newer server may add some."""
    hints = get_type_hints(shape)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: value_schema(hint) for name, hint in hints.items()},
        "required": sorted(shape.__required_keys__)}
    if shape.__doc__:
        schema["description"] = " ".join(shape.__doc__.split())
    return schema


def value_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of one field's type."""
    origin = get_origin(hint)
    if hint is Any:
        return {}
    if hint in SCALARS:
        return {"type": SCALARS[hint]}
    if is_typeddict(hint):
        return object_schema(hint)
    if origin in (Required, NotRequired):
        return value_schema(get_args(hint)[0])
    if origin is Literal:
        return {"enum": list(get_args(hint))}
    if origin in (Union, types.UnionType):
        return {"anyOf": [value_schema(arm) for arm in get_args(hint)]}
    if origin is list:
        return {"type": "array", "items": value_schema(get_args(hint)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": value_schema(get_args(hint)[1])}
    raise TypeError(f"no JSON Schema for {hint!r}")

