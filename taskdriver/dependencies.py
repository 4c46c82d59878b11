"""Dependencies: what a task that waits for others becomes, as pure rules (`now` passed in).

A task may wait for up to `MAX_DEPENDS_ON` tasks (`dependsOn`) and for every task of one
batch (`dependsOnBatch`). While any of them is unfinished it is `waiting`; when the last
one finishes it becomes `queued` if all completed, else (one ended failed or cancelled)
`failed` naming it, or `queued` anyway under `onDependencyFailure: "run"`.

`service/dependencies.py` loads what these rules read and commits what they decide, in the
same section as the change that finished the last dependency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .errors import Conflict
from .models import DependencyFailure, Task, TaskStatus

FAILED_LIKE = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})
"""The terminal statuses a dependent treats as a failure."""

FINISHED = FAILED_LIKE | {TaskStatus.COMPLETED}
"""The statuses in which a task will not change again unless an operator acts."""


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """How the batch a task depends on ended: what its agent gets beside the task."""

    batch_id: str
    total: int
    completed: int
    failed: int
    cancelled: int


@dataclass(frozen=True, slots=True)
class TaskDetail:
    """A task with its `dependsOn` tasks as they are now, its batch's summary, and the ids
    of the tasks that wait for it: one task's read, or a lease."""

    task: Task
    dependencies: tuple[Task, ...] = ()
    batch: BatchSummary | None = None
    dependents: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        """Every other attribute is the task's: the task's own schema dumps a detail."""
        if name == "task":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.task, name)


def has_dependencies(task: Task) -> bool:
    """Whether the task waits for anything at all."""
    return bool(task.depends_on) or task.depends_on_batch is not None


def batch_finished(counts: Mapping[TaskStatus, int]) -> bool:
    """Whether every task of a batch is finished (an empty batch is)."""
    return all(count == 0 for status, count in counts.items() if status not in FINISHED)


def batch_summary(batch_id: str, counts: Mapping[TaskStatus, int]) -> BatchSummary:
    """A batch's counts as a dependent's agent reads them."""
    cancelled = sum(counts.get(status, 0) for status in FAILED_LIKE
                    if status is not TaskStatus.FAILED)
    return BatchSummary(batch_id, sum(counts.values()), counts.get(TaskStatus.COMPLETED, 0),
                        counts.get(TaskStatus.FAILED, 0), cancelled)


def outlook(task: Task, dependencies: Mapping[str, Task | None],
            batch_counts: Mapping[TaskStatus, int] | None) -> tuple[TaskStatus, str | None]:
    """What a task with dependencies should be now: `waiting` while one is unfinished;
    then `queued`, or `failed` with the error naming the first dependency that failed
    (unless it runs anyway). `dependencies` holds its `dependsOn` tasks (None: gone)."""
    found = [(task_id, dependencies.get(task_id)) for task_id in task.depends_on]
    if any(dep is not None and dep.status not in FINISHED for _, dep in found) or (
            batch_counts is not None and not batch_finished(batch_counts)):
        return TaskStatus.WAITING, None
    if task.on_dependency_failure is DependencyFailure.RUN:
        return TaskStatus.QUEUED, None
    for task_id, dep in found:
        if dep is None:
            return TaskStatus.FAILED, f"Dependency {task_id} no longer exists"
        if dep.status in FAILED_LIKE:
            return TaskStatus.FAILED, f"Dependency {task_id} is {dep.status.value}"
    if batch_counts is not None:
        ended = sum(batch_counts.get(status, 0) for status in FAILED_LIKE)
        if ended:
            return TaskStatus.FAILED, (f"Dependency batch {task.depends_on_batch} has {ended} "
                                       "failed or cancelled task(s)")
    return TaskStatus.QUEUED, None


def settle(task: Task, status: TaskStatus, error: str | None, now: float) -> Task:
    """The task moved to the status its dependencies say (itself if already there)."""
    if status is task.status:
        return task
    if status is TaskStatus.FAILED:
        return replace(task, status=status, error=error, updated_at=now)
    return replace(task, status=status, updated_at=now)


def retried(task: Task, status: TaskStatus, error: str | None) -> Task:
    """A retried task (already `queued` by `rules.retry`) put where its dependencies now
    say; a dependency still failed (and no `run` policy) is a 409: retry that one first."""
    if status is TaskStatus.FAILED:
        raise Conflict(f"{error}: retry it first")
    return replace(task, status=status)
