"""Response dumps without marshmallow's per-field call chain.

For each field of each object, marshmallow's `Schema.dump` goes serialize -> get_value ->
the schema's get_attribute -> utils.get_value -> _get_value_for_key before it reaches the
field's own `_serialize`. A task answer has some 25 fields plus its attempts, so dumping
it was the largest single cost of an agent's request (README, "Performance").

`compile_dump(schema)` walks a schema once and returns a function that does only the work
that matters, in the same order: read each attribute the way `_get_value_for_key` does,
apply the field's `dump_default` when it is missing (and skip it when still missing), and
call the very `_serialize` marshmallow would call (none at all where it would return the
value unchanged: a str to a String field), or the compiled dump of a nested schema. The
output is the same dict. A schema it cannot follow exactly (dump hooks, `many`, its own
get_attribute or _serialize, a field that overrides serialize or get_value) is left to
marshmallow: `compile_dump` returns None. The test suite checks every
compiled dump against marshmallow's on every response it makes (`tests/conftest.py`).

Private ground, pinned: this module reads marshmallow internals (`Schema._hooks` keyed by
tag, `Field._serialize`, `_CHECK_ATTRIBUTE`, `utils.get_value`) as marshmallow 4 has them,
so `setup.cfg` pins marshmallow to major version 4. Its public API dumps a field only
through the call chain this module exists to skip. Should a 4.x release change those
internals, the equivalence check above is what catches it: run the suite after upgrading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from marshmallow import Schema, fields
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import get_value, missing

Dump = Callable[[Any], Any]
Convert = Callable[[Any, Any], Any]  # (value, the object it came from) -> dumped value

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
    steps: list[_Step] = []
    for attr_name, field in schema.dump_fields.items():
        name = attr_name if field.attribute is None else field.attribute
        if (type(field).serialize is not fields.Field.serialize
                or type(field).get_value is not fields.Field.get_value):
            return None
        steps.append(_Step(field.data_key if field.data_key is not None else attr_name,
                           name if field._CHECK_ATTRIBUTE else None, "." in name,
                           field.dump_default, _converter(field, attr_name),
                           _unchanged_types(field)))

    def dump(obj: Any) -> dict[str, Any]:
        out = {}
        by_key = hasattr(obj, "__getitem__")  # as utils._get_value_for_key decides
        for key, name, dotted, default, convert, unchanged in steps:
            if name is None:  # Method and Function fields compute their value
                value = None
            elif dotted:  # "task.id": marshmallow's own path lookup
                value = get_value(obj, name, missing)
            elif by_key:
                value = _item(obj, name)
            else:
                value = getattr(obj, name, missing)
            if value is missing:
                value = default() if callable(default) else default
                if value is missing:
                    continue
            out[key] = value if unchanged is ALL or type(value) in unchanged \
                else convert(value, obj)
        return out

    return dump


class _Step(NamedTuple):
    key: str
    name: str | None  # the attribute to read; None for a field that computes its value
    dotted: bool  # a path through nested objects ("task.id")
    default: Any
    convert: Convert
    unchanged: frozenset[type] | None  # value types _serialize returns as they are


ALL = None
"""`_Step.unchanged` for a field that returns every value as it is (Raw)."""


def _item(obj: Any, name: str) -> Any:
    """utils._get_value_for_key for an object with __getitem__."""
    try:
        return obj[name]
    except (KeyError, IndexError, TypeError, AttributeError):
        return getattr(obj, name, missing)


def _unchanged_types(field: fields.Field) -> frozenset[type] | None:
    """The value types the field's `_serialize` returns unchanged, so need no call."""
    serialize = type(field)._serialize
    if serialize is fields.Raw._serialize:
        return ALL
    if serialize is fields.String._serialize:
        return frozenset({str, type(None)})  # ensure_text_type: str(value)
    if (isinstance(field, fields.Number) and serialize is fields.Number._serialize
            and type(field)._format_num is fields.Number._format_num
            and field.num_type is int and not field.as_string):
        return frozenset({int, type(None)})  # int(value); a bool (an int subtype) is called
    return frozenset()


def _converter(field: fields.Field, attr_name: str) -> Convert:
    """The field's `_serialize`, with nested schemas (alone or in a list) compiled too."""
    if isinstance(field, fields.Nested) and type(field)._serialize is fields.Nested._serialize:
        nested = compile_dump(field.schema)
        if nested is not None:
            if field.schema.many or field.many:
                return lambda value, obj: None if value is None else [nested(v) for v in value]
            return lambda value, obj: None if value is None else nested(value)
    if (isinstance(field, fields.Dict) and type(field)._serialize is fields.Mapping._serialize
            and _returns_str_unchanged(field.key_field)
            and _returns_str_unchanged(field.value_field)):
        serialize_map = field._serialize
        # Mapping._serialize builds {key: value} through both fields' _serialize, which
        # give back a str as it is: a map of str to str comes out equal to itself.
        return lambda value, obj: value if value is None or _all_str(value) \
            else serialize_map(value, attr_name, obj)
    if isinstance(field, fields.List) and type(field)._serialize is fields.List._serialize:
        inner = _converter(field.inner, attr_name)
        return lambda value, obj: None if value is None else [inner(v, obj) for v in value]
    serialize = field._serialize
    return lambda value, obj: serialize(value, attr_name, obj)


def _returns_str_unchanged(field: fields.Field | None) -> bool:
    return field is not None and type(field)._serialize is fields.String._serialize


def _all_str(mapping: Any) -> bool:
    return type(mapping) is dict and all(
        type(key) is str and type(value) is str for key, value in mapping.items())
