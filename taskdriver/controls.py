"""Pure rules of the fleet controls: which task types may lease now, cancel, and progress.

Like `rules.py`, every function takes `now` and touches no storage: the service loads what
a rule needs (a type's running count and its recent lease starts), asks here, and commits.
Both storage backends and every face then share one meaning of "eligible", "cancelled"
and "progress".
"""

from __future__ import annotations

from dataclasses import replace

from .answers import TypeLoad
from .errors import Conflict
from .models import AttemptStatus, Project, Task, TaskStatus, TaskType
from .rules import close_attempt, extend_lease, require_holder

CANCELLED_WITHOUT_REASON = "Cancelled by an operator"
# What an operator may cancel: anything not yet finished (a waiting task too: stopping a
# pipeline's later step is as common as stopping its current one).
UNFINISHED = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING)


def rate_window_start(task_type: TaskType, now: float) -> float | None:
    """The start of the sliding window a new lease of this type is counted in: leases
    begun at or after it count against the rate limit (None: the type has none)."""
    if task_type.rate_limit is None:
        return None
    return now - task_type.rate_limit.per_seconds


def room(task_type: TaskType, load: TypeLoad) -> int | None:
    """How many more leases of this type may begin now (None: no limit applies)."""
    if task_type.paused:
        return 0
    limits = []
    if task_type.max_concurrent is not None:
        limits.append(task_type.max_concurrent - load.running)
    if task_type.rate_limit is not None:
        limits.append(task_type.rate_limit.count - load.recent_starts)
    return max(0, min(limits)) if limits else None


def may_lease(task_type: TaskType | None, load: TypeLoad | None) -> bool:
    """Whether a task of this type may be leased now: not paused, under its concurrency
    limit, and its rate limit not spent. A type without controls needs no load."""
    if task_type is None or not task_type.controlled:
        return True
    assert load is not None, "a controlled type's lease is decided on its load"
    return room(task_type, load) != 0


def project_leases(project: Project) -> bool:
    """Whether next-task hands out new work of the project (a paused one hands out none;
    its agents' resumes, outcomes and extensions still work)."""
    return not project.paused


# -- cancel ---------------------------------------------------------------------------------


def cancel(task: Task, reason: str | None, now: float) -> Task:
    """End a queued, running or waiting task for good (operator action): its running attempt
    ends `cancelled`, its lease ends, and `error` says why. A finished task is a 409."""
    if task.status not in UNFINISHED:
        raise Conflict(f"Task is {task.status.value}; only queued, running or waiting tasks "
                       "can be cancelled")
    error = reason or CANCELLED_WITHOUT_REASON
    attempts = (close_attempt(task, AttemptStatus.CANCELLED, now, error=error)
                if task.status is TaskStatus.RUNNING else task.attempts)
    return replace(task, status=TaskStatus.CANCELLED, error=error, assigned_to=None,
                   lease_expires_at=None, run_after=None, updated_at=now,
                   attempts=attempts)


def cancellable(status: TaskStatus | None) -> tuple[TaskStatus, ...]:
    """The statuses a bulk cancel ends: the one asked for, else every unfinished one."""
    return UNFINISHED if status is None else (status,)


# -- progress -------------------------------------------------------------------------------


def report_progress(task: Task, agent_name: str, progress: float | None,
                    message: str | None, extension_minutes: float | None, now: float
                    ) -> Task:
    """The holder says how far it got (and, with `extension_minutes`, keeps its lease longer
    as `extend-lease` does); what it leaves out keeps its last value."""
    require_holder(task, agent_name)
    changed = replace(task, progress=task.progress if progress is None else progress,
                      progress_message=task.progress_message if message is None else message,
                      progress_at=now, updated_at=now)
    if extension_minutes is None:
        return changed
    return extend_lease(changed, agent_name, extension_minutes, now)
