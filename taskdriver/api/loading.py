"""Bulk items loaded without marshmallow's per-item bookkeeping.

A bulk create loads up to 1,000 items with the task schema. For each one, `Schema.load`
spent about half of its time on its own machinery (an error store, a walk over every
declared field whether the item has it or not, hook lookups) around the fields' own
`deserialize`: a 1,000-task request took 48.5 ms in-process with it, 42.9 without
(README, "Performance").

`compile_load(schema)` walks the schema once and returns a function that, for one item,
runs for each key the item has what `Field.deserialize` would run (the field's own
`_deserialize`, then its validators; a mapping's keys and values through their fields the
same way), fills the load defaults of the keys it lacks, and calls the schema's own
`validates_schema` methods: the same dict `schema.load` returns. `Field.deserialize`
itself is skipped because its wrapping cost more than the work it wraps: missing-value
checks that cannot fire for a key the item has, and an `And` of the validators built
anew on every call (a 1,000-item bulk: 7.5 ms of loading before, 3.0 ms after, the
fastest of 60 runs each). An item it cannot load cleanly (not a JSON object, an unknown
key, a missing required field, any validation error) is loaded again by `schema.load`, so
that every error, and its message, is marshmallow's own. A schema it
cannot follow exactly (load hooks, field validators declared on the schema, `many`,
`unknown` other than RAISE, its own `_deserialize`, dotted attributes) is left to
marshmallow: `compile_load` returns `schema.load` itself; so is a field that overrides
`deserialize` or its checks, or has its own pre- or post-load steps (`Field.deserialize`
runs then). The test suite checks every
compiled load against `schema.load` (`tests/conftest.py`).

Private ground, pinned: this module calls marshmallow internals as marshmallow 4 has them
(`Schema._hooks` keyed by tag with each hook's keyword arguments, `Field._deserialize`,
`Field._validate`, `Mapping.key_field` and `value_field`), so `setup.cfg` pins marshmallow
to major version 4. Should a 4.x release change them, the equivalence check above is what
catches it: run the suite after upgrading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.fields import Field
from marshmallow.utils import missing

Load = Callable[[Any], dict[str, Any]]
FieldLoad = Callable[[Any, Any], Any]
"""(a value the input holds, the input) -> the value loaded; raises `ValidationError`
(without marshmallow's message: the caller loads the item again with marshmallow)."""

COMPILED_LOADS: list[tuple[Schema, Load]] = []
"""Every compiled load in use, for the test suite's check."""


def compile_load(schema: Schema) -> Load:
    """A function loading one item exactly as `schema.load` would (raising its errors)."""
    hooks = schema._hooks
    if (schema.many or hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES]
            or schema.unknown != RAISE or schema.dict_class is not dict
            or type(schema)._deserialize is not Schema._deserialize):
        return schema.load
    by_key: dict[str, tuple[str, FieldLoad]] = {}
    defaults: list[tuple[str, str, Field]] = []  # (key, attribute, field) loaded when absent
    required: set[str] = set()
    for attr_name, field in schema.load_fields.items():
        key = field.data_key if field.data_key is not None else attr_name
        attribute = field.attribute or attr_name
        field_load = _field_load(field, key)
        if "." in attribute or field_load is None:  # marshmallow would nest it, or its own
            return schema.load
        by_key[key] = (attribute, field_load)
        if field.required:
            required.add(key)
        elif field.load_default is not missing:
            defaults.append((key, attribute, field))
    # The item-level `validates_schema` methods, as `Schema._invoke_schema_validators`
    # calls them on an item with no field errors (so `skip_on_field_errors` skips none).
    validators = [(getattr(schema, name), bool(hook.get("pass_original")))
                  for name, pass_collection, hook in hooks[VALIDATES_SCHEMA]
                  if not pass_collection]

    def load(raw: Any) -> dict[str, Any]:
        if type(raw) is not dict or not by_key.keys() >= raw.keys() >= required:
            return schema.load(raw)
        loaded: dict[str, Any] = {}
        try:
            for key, value in raw.items():
                attribute, field_load = by_key[key]
                result = field_load(value, raw)
                if result is not missing:
                    loaded[attribute] = result
            for key, attribute, field in defaults:
                if key not in raw:
                    loaded[attribute] = field.deserialize(missing, key, raw)
            for validator, pass_original in validators:
                if pass_original:
                    validator(loaded, raw, partial=None, many=False, unknown=RAISE)
                else:
                    validator(loaded, partial=None, many=False, unknown=RAISE)
        except ValidationError:  # marshmallow's own load says what it was, the same way
            return schema.load(raw)
        return loaded

    COMPILED_LOADS.append((schema, load))
    return load


def _field_load(field: Field, key: str | None) -> FieldLoad | None:
    """What `field.deserialize(value, key, data)` runs for a value that is there: None
    (allowed or refused), else `_deserialize` and then every validator; None for a field
    that changes any of that (its `deserialize`, its checks, pre- or post-load steps)."""
    kind = type(field)
    if (kind.deserialize is not Field.deserialize or kind._validate is not Field._validate
            or kind._validate_missing is not Field._validate_missing
            or field.pre_load or field.post_load):
        return None
    convert = _converter(field, key)
    if convert is None:
        return None
    validators = tuple(field.validators)
    allow_none = field.allow_none

    def field_load(value: Any, data: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise ValidationError("null")
        output = convert(value, data)
        for validator in validators:  # `And` raises once all ran: any one refuses the item
            validator(output)
        return output

    return field_load


def _converter(field: Field, key: str | None) -> FieldLoad | None:
    """The field's `_deserialize`; for a mapping with key or value fields, its loop with
    those fields' loads (called, as marshmallow calls them, with no key and no data)."""
    deserialize = field._deserialize
    if not (isinstance(field, fields.Mapping)
            and type(field)._deserialize is fields.Mapping._deserialize
            and (field.key_field or field.value_field)):
        return lambda value, data: deserialize(value, key, data)
    load_key = _field_load(field.key_field, None) if field.key_field else _same
    load_value = _field_load(field.value_field, None) if field.value_field else _same
    if load_key is None or load_value is None:
        return None
    new_mapping = field.mapping_type

    def convert(value: Any, data: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("invalid")
        result = new_mapping()
        for item_key, item in value.items():
            result[load_key(item_key, None)] = load_value(item, None)
        return result

    return convert


def _same(value: Any, data: Any) -> Any:
    return value
