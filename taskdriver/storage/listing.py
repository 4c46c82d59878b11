"""The file backend's task list: which of a project's tasks match a `TaskFilter`, in a
`TaskOrder`.

A scan over the tasks a worker holds in memory: the equality and substring filters read
the packed tasks' own attributes; only a text search unpacks tasks, since the instructions
and the result are packed (see `packed.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

import orjson

from ..answers import OLDEST_FIRST, TaskFilter, TaskOrder, TaskSort
from ..models import Task
from .packed import PackedTask
from .state import ProjectState


def matching(state: ProjectState, task_filter: TaskFilter, order: TaskOrder,
             unpack: Callable[[PackedTask], Task]) -> list[PackedTask]:
    """Every task of `state` that passes `task_filter`, in `order`."""
    if task_filter.batch_id is not None:
        members = state.batches.get(task_filter.batch_id, {})
        source = sorted((state.tasks[i] for i in members), key=lambda t: t.seq)
    else:
        source = list(state.tasks.values())
    matches = [t for t in source if _passes(task_filter, t)]
    if task_filter.text is not None:
        needle = task_filter.text.lower()
        matches = [t for t in matches if _mentions(unpack(t), needle)]
    return matches if order == OLDEST_FIRST else _ordered(matches, order)


def _contains(value: str | None, part: str | None) -> bool:
    """No part asked for, or `value` holds it (case-insensitive)."""
    return part is None or (value is not None and part.lower() in value.lower())


def _passes(task_filter: TaskFilter, task: PackedTask) -> bool:
    """Whether a task passes every filter but `text` (see `TaskFilter`)."""
    return ((task_filter.status is None or task.status is task_filter.status)
            and (task_filter.assigned_to is None or task.assigned_to == task_filter.assigned_to)
            and (task_filter.type_id is None or task.type_id == task_filter.type_id)
            and _contains(task.batch_id, task_filter.batch_contains)
            and _contains(task.assigned_to, task_filter.agent_contains))


def _mentions(task: Task, needle: str) -> bool:
    """Whether the instructions or the result (as text, like PostgreSQL's `->>`) hold
    `needle`, which is already lower case."""
    if needle in task.instructions.lower():
        return True
    if task.result is None:
        return False
    result = task.result if isinstance(task.result, str) else orjson.dumps(task.result).decode()
    return needle in result.lower()


_SORT_KEYS: dict[TaskSort, Callable[[PackedTask], Any]] = {
    TaskSort.CREATED: attrgetter("seq"), TaskSort.STATUS: lambda t: t.status.value,
    TaskSort.PRIORITY: attrgetter("priority"), TaskSort.AGENT: attrgetter("assigned_to"),
    TaskSort.BATCH: attrgetter("batch_id"), TaskSort.UPDATED: attrgetter("updated_at")}


def _ordered(tasks: list[PackedTask], order: TaskOrder) -> list[PackedTask]:
    """`tasks` (oldest first) in `order`: ties keep their order, those without a value last."""
    key = _SORT_KEYS[order.sort]
    present = [t for t in tasks if key(t) is not None]
    present.sort(key=key, reverse=order.descending)  # a stable sort, reversed or not
    return present + [t for t in tasks if key(t) is None]


def task_passes(task_filter: TaskFilter, task: Task) -> bool:
    """Whether a whole task (an archived one, say) passes every filter of `task_filter`."""
    return ((task_filter.batch_id is None or task.batch_id == task_filter.batch_id)
            and _passes(task_filter, task)  # type: ignore[arg-type]  # same attributes
            and (task_filter.text is None or _mentions(task, task_filter.text.lower())))
