"""Bulk items loaded without marshmallow's per-item bookkeeping.

A bulk create loads up to 1,000 items with the task schema. For each one, `Schema.load`
spent about half of its time on its own machinery (an error store, a walk over every
declared field whether the item has it or not, hook lookups) around the fields' own
`deserialize`: a 1,000-task request took 48.5 ms in-process with it, 42.9 without
(README, "Performance").

`compile_load(schema)` walks the schema once and returns a function that, for one item,
calls the very `Field.deserialize` marshmallow would call for each key the item has, fills
the load defaults of the keys it lacks, and runs the schema's own `validates_schema`
methods: the same dict `schema.load` returns. An item it cannot load cleanly (not a JSON
object, an unknown key, a missing required field, any validation error) is loaded again by
`schema.load`, so that every error, and its message, is marshmallow's own. A schema it
cannot follow exactly (load hooks, field validators declared on the schema, `many`,
`unknown` other than RAISE, its own `_deserialize`, dotted attributes) is left to
marshmallow: `compile_load` returns `schema.load` itself. The test suite checks every
compiled load against `schema.load` (`tests/conftest.py`).

Private ground, pinned: this module calls marshmallow internals as marshmallow 4 has them
(`Schema._hooks` keyed by tag, `_invoke_schema_validators(pass_collection=...)`, which
marshmallow 3 spelled `pass_many`, and `ErrorStore`), so `setup.cfg` pins marshmallow to
major version 4. Should a 4.x release change them, the equivalence check above is what
catches it: run the suite after upgrading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.error_store import ErrorStore
from marshmallow.fields import Field
from marshmallow.utils import missing

Load = Callable[[Any], dict[str, Any]]

COMPILED_LOADS: list[tuple[Schema, Load]] = []
"""Every compiled load in use, for the test suite's check."""


def compile_load(schema: Schema) -> Load:
    """A function loading one item exactly as `schema.load` would (raising its errors)."""
    hooks = schema._hooks
    if (schema.many or hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES]
            or schema.unknown != RAISE or schema.dict_class is not dict
            or type(schema)._deserialize is not Schema._deserialize):
        return schema.load
    by_key: dict[str, tuple[str, Field]] = {}
    defaults: list[tuple[str, str, Field]] = []  # (key, attribute, field) loaded when absent
    required: set[str] = set()
    for attr_name, field in schema.load_fields.items():
        key = field.data_key if field.data_key is not None else attr_name
        attribute = field.attribute or attr_name
        if "." in attribute:  # marshmallow would nest it
            return schema.load
        by_key[key] = (attribute, field)
        if field.required:
            required.add(key)
        elif field.load_default is not missing:
            defaults.append((key, attribute, field))
    validates_schema = bool(hooks[VALIDATES_SCHEMA])

    def load(raw: Any) -> dict[str, Any]:
        if type(raw) is not dict or not by_key.keys() >= raw.keys() >= required:
            return schema.load(raw)
        loaded: dict[str, Any] = {}
        try:
            for key, value in raw.items():
                attribute, field = by_key[key]
                result = field.deserialize(value, key, raw)
                if result is not missing:
                    loaded[attribute] = result
            for key, attribute, field in defaults:
                if key not in raw:
                    loaded[attribute] = field.deserialize(missing, key, raw)
        except ValidationError:  # marshmallow's own load says what it was, the same way
            return schema.load(raw)
        if validates_schema:
            errors = ErrorStore()
            schema._invoke_schema_validators(
                error_store=errors, pass_collection=False, data=loaded, original_data=raw,
                many=False, partial=None, field_errors=False, unknown=RAISE)
            if errors.errors:
                return schema.load(raw)
        return loaded

    COMPILED_LOADS.append((schema, load))
    return load
