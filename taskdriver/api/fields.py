"""Field types and value rules shared by request and response schemas.

JSON bodies are strict: a number is a JSON number, a boolean is true or false, a pattern
matches the whole value. The request schemas (`requests.py`) build on these; `Timestamp`
is the one response field (`responses.py`) of our own.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from .. import inputs
from ..models import (
    MAX_DELAY_SECONDS,
    MAX_MINUTES,
    MAX_PRIORITY,
    MAX_RETRIES_LIMIT,
    MIN_MINUTES,
    MIN_PRIORITY,
)
from ..templates import VARIABLE_NAME
from ..times import rfc3339

MAX_OFFSET = 2**63 - 1
TEXT_LIMIT = inputs.TEXT_LIMIT


class WholeMatch(validate.Regexp):
    """A pattern the whole value must match: Python's `$` would let a trailing newline by."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# The name rules and limits are `inputs.py`'s, which the operator CLI checks too.
PROJECT_NAME = WholeMatch(inputs.PROJECT_NAME.pattern, error=inputs.PROJECT_NAME.message)
AGENT_NAME = WholeMatch(inputs.AGENT_NAME.pattern, error=inputs.AGENT_NAME.message)
TASK_TYPE_NAME = WholeMatch(inputs.TASK_TYPE_NAME.pattern, error=inputs.TASK_TYPE_NAME.message)
NAME_LENGTH = validate.Length(min=1, max=inputs.NAME_MAX_LENGTH)
VARIABLE = WholeMatch(VARIABLE_NAME, error="Variable names are 1-100 letters, numbers or _ . -")
MINUTES = validate.Range(min=MIN_MINUTES, max=MAX_MINUTES)
PRIORITY = validate.Range(min=MIN_PRIORITY, max=MAX_PRIORITY)
DELAY = validate.Range(min=0, max=MAX_DELAY_SECONDS)
RETRIES = validate.Range(min=0, max=MAX_RETRIES_LIMIT)


def text(required: bool = False, max_length: int = TEXT_LIMIT, **kwargs: Any) -> fields.Str:
    """A body string of at most `max_length` characters."""
    return fields.Str(required=required, validate=validate.Length(max=max_length), **kwargs)


class JsonInt(fields.Int):
    """A body integer: a JSON integer only (2.7, 1e-300, "4" and true are refused, not cut)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class JsonNumber(fields.Float):
    """A body number: a JSON number only (a string such as " 4 " is refused, not parsed)."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid")
        return super()._validated(value)


class JsonBool(fields.Bool):
    """A body boolean: JSON true or false only ("yes", 1 and "true" are refused)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def minutes(**kwargs: Any) -> fields.Float:
    """A body duration in minutes, fractions allowed, within the lease bounds."""
    return JsonNumber(validate=MINUTES, allow_nan=False, **kwargs)


class Timestamp(fields.Field):
    """POSIX seconds dumped as RFC 3339 UTC with milliseconds and a `Z`."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else rfc3339(value)

    def _jsonschema_type_mapping(self) -> dict[str, str]:
        return {"type": "string", "format": "date-time"}


class StringMap(fields.Dict):
    """A JSON object of string to string (template variables)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(keys=fields.Str(validate=VARIABLE),
                         values=fields.Str(validate=validate.Length(max=TEXT_LIMIT)), **kwargs)
