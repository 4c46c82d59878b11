"""Records to and from JSON: the one encoding both backends store."""

from __future__ import annotations

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
    raw["status"] = TaskStatus(raw["status"])
    raw["attempts"] = tuple(
        Attempt(**{**a, "status": AttemptStatus(a["status"])}) for a in raw["attempts"])
    return Task(**raw)


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
