"""Response dumps without marshmallow's per-field call chain.

For each field of each object, marshmallow's `Schema.dump` goes serialize -> get_value ->
the schema's get_attribute -> utils.get_value -> _get_value_for_key before it reaches the
field's own `_serialize`. A task answer has some 25 fields plus its attempts, so dumping
it was the largest single cost of an agent's request (README, "Performance").

`compile_dump(schema)` walks a schema once and returns a function, generated as Python
source with one block per field, that does only the work that matters, in the same order:
read each attribute the way `_get_value_for_key` does, apply the field's `dump_default`
when it is missing (and skip it when still missing), and call the very `_serialize`
marshmallow would call (none at all where it would return the value unchanged: a str to a
String field), or the compiled dump of a nested schema. The output is the same dict. A
schema it cannot follow exactly (dump hooks, `many`, its own get_attribute or _serialize,
a field that overrides serialize or get_value) is left to marshmallow: `compile_dump`
returns None. The test suite checks every
compiled dump against marshmallow's on every response it makes (`tests/conftest.py`).

Private ground, pinned: this module reads marshmallow internals (`Schema._hooks` keyed by
tag, `Field._serialize`, `_CHECK_ATTRIBUTE`, `utils.get_value`) as marshmallow 4 has them,
so `setup.cfg` pins marshmallow to major version 4. Its public API dumps a field only
through the call chain this module exists to skip. Should a 4.x release change those
internals, the equivalence check above is what catches it: run the suite after upgrading.
"""

from __future__ import annotations

from collections.abc import Callable
from types import NoneType
from typing import Any, NamedTuple

from marshmallow import Schema, fields
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import get_value, missing

from .fields import Timestamp

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
    return _generated(steps, type(schema).__name__)


class _Step(NamedTuple):
    key: str
    name: str | None  # the attribute to read; None for a field that computes its value
    dotted: bool  # a path through nested objects ("task.id")
    default: Any
    convert: Convert
    unchanged: frozenset[type] | None  # value types _serialize returns as they are


ALL = None
"""`_Step.unchanged` for a field that returns every value as it is (Raw)."""


def _generated(steps: list[_Step], schema_name: str) -> Dump:
    """The dump of these steps as one function of straight-line Python, one block per
    field, compiled once per schema: the loop over the steps it replaced spent more on
    unpacking each step and branching on its kind than on reading and converting the
    value (a 1,000-task bulk answer: 8.9 ms before, 6.3 ms after, fastest of 40 runs).

    An object with `__getitem__` (a dict) is read by key, as `utils._get_value_for_key`
    decides; anything else by attribute. Each field then takes its `dump_default` when
    the value is missing (and is left out when still missing), and is converted unless
    its value's type is one its `_serialize` returns unchanged."""
    names: dict[str, Any] = {"missing": missing, "_item": _item, "get_value": get_value}
    by_key: list[str] = []
    by_attribute: list[str] = []
    for index, step in enumerate(steps):
        names[f"convert_{index}"] = step.convert
        names[f"unchanged_{index}"] = step.unchanged
        names[f"default_{index}"] = step.default
        for lines, read in ((by_key, f"_item(obj, {step.name!r})"),
                            (by_attribute, f"getattr(obj, {step.name!r}, missing)")):
            if step.name is None:  # Method and Function fields compute their value
                read = "None"
            elif step.dotted:  # "task.id": marshmallow's own path lookup
                read = f"get_value(obj, {step.name!r}, missing)"
            lines.extend(_field_block(index, step, read))
    source = "\n".join([
        "def dump(obj):",
        "    out = {}",
        "    if hasattr(obj, '__getitem__'):",
        *("    " + line for line in by_key),
        "        return out",
        *by_attribute,
        "    return out",
    ])
    # Named after its schema, so a profile tells the compiled dumps apart.
    exec(compile(source, f"<compiled dump of {schema_name}>", "exec"), names)
    dump: Dump = names["dump"]
    return dump


def _field_block(index: int, step: _Step, read: str) -> list[str]:
    """The lines dumping one field into `out` (indented for the function's body)."""
    lines = [f"    value = {read}"]
    if step.default is not missing:
        call = "()" if callable(step.default) else ""
        lines += ["    if value is missing:", f"        value = default_{index}{call}"]
    lines.append("    if value is not missing:")  # still missing: the key is left out
    if step.unchanged is ALL:
        lines.append(f"        out[{step.key!r}] = value")
    elif not step.unchanged:
        lines.append(f"        out[{step.key!r}] = convert_{index}(value, obj)")
    else:
        lines.append(f"        out[{step.key!r}] = value if type(value) in unchanged_{index}"
                     f" else convert_{index}(value, obj)")
    return lines


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
        return frozenset({str, NoneType})  # ensure_text_type: str(value)
    if (isinstance(field, fields.Number) and serialize is fields.Number._serialize
            and type(field)._format_num is fields.Number._format_num
            and field.num_type is int and not field.as_string):
        return frozenset({int, NoneType})  # int(value); a bool (an int subtype) is called
    if serialize in _NONE_TO_NONE:
        return frozenset({NoneType})
    return frozenset()


# `_serialize` methods that answer None with None before anything else, whatever the
# field's options: a task's unset times, progress and the like need no call.
_NONE_TO_NONE = frozenset({fields.Number._serialize, fields.Enum._serialize,
                           fields.List._serialize, fields.Nested._serialize,
                           fields.Mapping._serialize, fields.UUID._serialize,
                           Timestamp._serialize})


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
