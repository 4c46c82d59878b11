"""Records to and from JSON: the one encoding both backends store."""

from __future__ import annotations

from sys import intern
from typing import Any

import orjson

from ..models import (
    Attempt,
    AttemptStatus,
    DuplicateHandling,
    Project,
    ProjectConfig,
    ProjectStatus,
    RetryBackoff,
    Session,
    Task,
    TaskStatus,
    TaskType,
)


def encode(record: Any) -> bytes:
    """A record as JSON (orjson writes dataclasses, enums and tuples natively)."""
    return orjson.dumps(record)


def decode_task(raw: dict[str, Any]) -> Task:
    """A task as stored, its repeated strings interned.

    A worker holds every task of the projects it serves, decoded from the same few
    strings over and over (the project id, type ids, batch ids, agent names, variable
    names): one shared copy of each instead of one per task is about 200 bytes a task.
    """
    raw["status"] = TaskStatus(raw["status"])
    raw["attempts"] = tuple(
        Attempt(**{**a, "status": AttemptStatus(a["status"]),
                   "agent_name": _shared(a["agent_name"])}) for a in raw["attempts"])
    for name in ("project_id", "type_id", "batch_id", "assigned_to"):
        raw[name] = _shared(raw[name])
    if raw["variables"]:
        raw["variables"] = {intern(key): value for key, value in raw["variables"].items()}
    if raw["updated_at"] == raw["created_at"]:
        raw["updated_at"] = raw["created_at"]  # one float object for both
    return Task(**raw)


def _shared(text: str | None) -> str | None:
    return None if text is None else intern(text)


def decode_task_type(raw: dict[str, Any]) -> TaskType:
    raw["variables"] = tuple(raw["variables"])
    raw["duplicate_handling"] = DuplicateHandling(raw["duplicate_handling"])
    if "retry_backoff" in raw:  # records from before backoff existed take the default
        raw["retry_backoff"] = RetryBackoff(raw["retry_backoff"])
    return TaskType(**raw)


def decode_project(raw: dict[str, Any]) -> Project:
    raw["status"] = ProjectStatus(raw["status"])
    raw["config"] = ProjectConfig(**raw["config"])
    return Project(**raw)


def decode_session(raw: dict[str, Any]) -> Session:
    return Session(**raw)
