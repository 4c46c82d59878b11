"""Records from JSON: the decoders of what both backends store (written with `orjson.dumps`,
which writes dataclasses, enums and tuples natively)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from ..archiving import ArchivedTask
from ..models import (
    Attempt,
    AttemptStatus,
    DependencyFailure,
    DuplicateHandling,
    Project,
    ProjectConfig,
    ProjectStatus,
    RateLimit,
    RetryBackoff,
    Session,
    Task,
    TaskStatus,
    TaskType,
)

_Record = TypeVar("_Record")


def slot_setters(cls: type) -> dict[str, Callable[[Any, Any], None]]:
    """Each field of a slots dataclass with the setter of its slot: setting a frozen
    record's fields through them skips `object.__setattr__` (see `_builder`)."""
    return {field.name: getattr(cls, field.name).__set__
            for field in dataclasses.fields(cls)}


def _builder(cls: type[_Record]) -> Callable[[dict[str, Any]], _Record]:
    """A constructor of `cls` (a slots dataclass) from a stored record's fields.

    A frozen dataclass's own `__init__` sets each field through `object.__setattr__`:
    12 microseconds for a task's 24 fields, paid for every task a worker loads or replays.
    Setting the slots directly takes a third of that. Fields a record lacks (it was written
    before they existed) take their defaults, as they would in `__init__`.
    """
    steps = []
    setters = slot_setters(cls)
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.default is not dataclasses.MISSING:
            make: Callable[[], Any] | None = partial(_same, field.default)
        elif field.default_factory is not dataclasses.MISSING:
            make = field.default_factory
        else:
            make = None
        steps.append((field.name, setters[field.name], make))
    new = object.__new__

    def build(values: dict[str, Any]) -> _Record:
        record = new(cls)
        for name, set_slot, make in steps:
            if name in values:
                set_slot(record, values[name])
            elif make is None:
                raise TypeError(f"a stored {cls.__name__} lacks {name}")
            else:
                set_slot(record, make())
        return record

    return build


def _same(value: Any) -> Any:
    return value


_new_task = _builder(Task)
_new_attempt = _builder(Attempt)
_new_archived_task = _builder(ArchivedTask)


def _task_fields(raw: dict[str, Any]) -> dict[str, Any]:
    raw["status"] = TaskStatus(raw["status"])
    raw["attempts"] = decode_attempts(raw["attempts"])
    if "depends_on" in raw:  # records from before dependencies existed take the default
        raw["depends_on"] = tuple(raw["depends_on"] or ())
    if "on_dependency_failure" in raw:
        raw["on_dependency_failure"] = DependencyFailure(raw["on_dependency_failure"])
    return raw


def decode_task(raw: dict[str, Any]) -> Task:
    """A task as stored (the file backend keeps its tasks packed: see `packed.py`)."""
    return _new_task(_task_fields(raw))


def decode_archived_task(raw: dict[str, Any]) -> ArchivedTask:
    """A task as its project's archive stores it."""
    return _new_archived_task(_task_fields(raw))


def decode_attempts(raw: list[dict[str, Any]] | None) -> tuple[Attempt, ...]:
    """A task's attempt history as stored."""
    if not raw:
        return ()
    return tuple(_new_attempt({**a, "status": AttemptStatus(a["status"])}) for a in raw)


def decode_task_type(raw: dict[str, Any]) -> TaskType:
    raw["variables"] = tuple(raw["variables"])
    raw["duplicate_handling"] = DuplicateHandling(raw["duplicate_handling"])
    if "retry_backoff" in raw:  # records from before backoff existed take the default
        raw["retry_backoff"] = RetryBackoff(raw["retry_backoff"])
    if raw.get("rate_limit") is not None:
        raw["rate_limit"] = RateLimit(**raw["rate_limit"])
    return TaskType(**raw)


def decode_project(raw: dict[str, Any]) -> Project:
    raw["status"] = ProjectStatus(raw["status"])
    raw["config"] = ProjectConfig(**raw["config"])
    return Project(**raw)


def decode_session(raw: dict[str, Any]) -> Session:
    return Session(**raw)
