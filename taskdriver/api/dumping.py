"""Response dumps without marshmallow's per-field call chain.

For each field of each object, marshmallow's `Schema.dump` goes serialize -> get_value ->
the schema's get_attribute -> utils.get_value -> _get_value_for_key before it reaches the
field's own `_serialize`. A task answer has some 25 fields plus its attempts, so dumping
it was the largest single cost of an agent's request (README, "Performance").

`compile_dump(schema)` walks a schema once and returns a function that does only the work
that matters, in the same order: read each attribute the way `_get_value_for_key` does,
apply the field's `dump_default` when it is missing (and skip it when still missing), and
call the very `_serialize` marshmallow would call, or the compiled dump of a nested schema.
The output is the same dict. A schema it cannot follow exactly (dump hooks, `many`, its own
get_attribute or _serialize, a field that overrides serialize or get_value) is left to
marshmallow: `compile_dump` returns None. The test suite checks every compiled dump against
marshmallow's on every response it makes (`tests/conftest.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import get_value, missing

Dump = Callable[[Any], Any]
Convert = Callable[[Any, Any], Any]  # (value, the object it came from) -> dumped value
Read = Callable[[Any], Any]

COMPILED: list[tuple[Schema, Dump]] = []
"""Every response schema dumping through its compiled dump, for the test suite's check."""


def use_compiled_dump(schema: Schema) -> None:
    """Make `schema.dump(obj)` run its compiled dump, if it has one.

    Only for the top-level schemas flask-smorest calls with one argument: the instance's
    `dump` is replaced (apispec documents the schema and never calls it).
    """
    dump = compile_dump(schema)
    if dump is not None:
        schema.dump = dump  # type: ignore[method-assign,assignment]
        COMPILED.append((schema, dump))


def compile_dump(schema: Schema) -> Dump | None:
    """A function dumping one object exactly as `schema.dump` would, or None."""
    if (schema.many or schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP]
            or type(schema).get_attribute is not Schema.get_attribute
            or type(schema)._serialize is not Schema._serialize
            or schema.dict_class is not dict):
        return None
    steps: list[tuple[str, Read, Convert]] = []
    for attr_name, field in schema.dump_fields.items():
        if (type(field).serialize is not fields.Field.serialize
                or type(field).get_value is not fields.Field.get_value):
            return None
        key = field.data_key if field.data_key is not None else attr_name
        steps.append((key, _reader(field, attr_name), _converter(field, attr_name)))

    def dump(obj: Any) -> dict[str, Any]:
        out = {}
        for key, read, convert in steps:
            value = read(obj)
            if value is not missing:
                out[key] = convert(value, obj)
        return out

    return dump


def _reader(field: fields.Field, attr_name: str) -> Read:
    """What `Field.serialize` reads before `_serialize`, defaults applied."""
    if not field._CHECK_ATTRIBUTE:  # Method and Function fields compute their value
        return lambda obj: None
    name = attr_name if field.attribute is None else field.attribute
    default = field.dump_default

    def lookup(obj: Any) -> Any:  # utils._get_value_for_key
        if not hasattr(obj, "__getitem__"):
            return getattr(obj, name, missing)
        try:
            return obj[name]
        except (KeyError, IndexError, TypeError, AttributeError):
            return getattr(obj, name, missing)

    look = (lambda obj: get_value(obj, name, missing)) if "." in name else lookup

    def read(obj: Any) -> Any:
        value = look(obj)
        if value is missing:
            value = default() if callable(default) else default
        return value

    return read


def _converter(field: fields.Field, attr_name: str) -> Convert:
    """The field's `_serialize`, with nested schemas (alone or in a list) compiled too."""
    if isinstance(field, fields.Nested) and type(field)._serialize is fields.Nested._serialize:
        nested = compile_dump(field.schema)
        if nested is not None:
            if field.schema.many or field.many:
                return lambda value, obj: None if value is None else [nested(v) for v in value]
            return lambda value, obj: None if value is None else nested(value)
    if isinstance(field, fields.List) and type(field)._serialize is fields.List._serialize:
        inner = _converter(field.inner, attr_name)
        return lambda value, obj: None if value is None else [inner(v, obj) for v in value]
    serialize = field._serialize
    return lambda value, obj: serialize(value, attr_name, obj)
