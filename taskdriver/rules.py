"""Pure queue rules: what each transition of a task means. Every function takes `now`.

Used alike by the API, the lazy reclaim inside `next-task` and the reaper CLI, so there is
exactly one definition of leasing, completing, failing, releasing, expiring and extending.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .errors import Conflict, FieldError
from .models import (
    IDEMPOTENCY_WINDOW_SECONDS,
    Attempt,
    AttemptStatus,
    DuplicateHandling,
    Idempotency,
    IdempotencyRecord,
    Project,
    RetryBackoff,
    Task,
    TaskStatus,
    TaskType,
    new_id,
)
from .templates import placeholders, render

SECONDS_PER_MINUTE = 60.0


# -- what a new task is -------------------------------------------------------------------


def check_placeholders_declared(task_type: TaskType) -> None:
    """Every `{{placeholder}}` of a type's template must be one of its variables (422)."""
    undeclared = [p for p in placeholders(task_type.template) if p not in task_type.variables]
    if undeclared:
        raise FieldError("template", "Placeholder(s) not declared in variables: "
                         + ", ".join(undeclared), task_type.template)


def instructions_for(task_type: TaskType | None, variables: dict[str, str],
                     extra: str | None) -> str:
    """A task's instructions: its type's template rendered with exactly its declared
    variables, then the caller's own instructions after a blank line; without a template,
    the caller's instructions, which are then required."""
    if task_type is not None:
        for name in variables:
            if name not in task_type.variables:
                raise FieldError(f"variables.{name}",
                                 f"Variable {name} is not declared by task type "
                                 f"{task_type.name}", variables[name])
        for name in task_type.variables:
            if name not in variables:
                raise FieldError(f"variables.{name}",
                                 f"Variable {name} is required by task type {task_type.name}")
        if task_type.template:
            rendered = render(task_type.template, variables)
            return f"{rendered}\n\n{extra}" if extra else rendered
    if not extra:
        raise FieldError("instructions", "Instructions are required when there is no template")
    return extra


def checks_duplicates(task_type: TaskType | None) -> bool:
    """Whether new tasks of this type must look for a live task with the same variables
    (`fail` or `ignore`); only such a task's key is unique among live tasks."""
    return task_type is not None and task_type.duplicate_handling is not DuplicateHandling.ALLOW


def duplicate_of(task_type: TaskType | None, same_key: Task | None,
                 task_id: str | None = None) -> Task | None:
    """Apply a type's duplicate policy to the task found with the same variables.

    `allow` (or no type): None, go ahead. `fail`: a 409. `ignore`: the existing task, which
    a create answers with; `task_id` is the task being changed, never its own duplicate.
    """
    if (task_type is None or task_type.duplicate_handling is DuplicateHandling.ALLOW
            or same_key is None or same_key.id == task_id):
        return None
    if task_type.duplicate_handling is DuplicateHandling.FAIL:
        raise Conflict(f"Duplicate of task {same_key.id}")
    return same_key


# -- leases --------------------------------------------------------------------------------


def lease_minutes(task_type: TaskType | None, project: Project) -> float:
    """The lease a claim gets: the task type's, else the project's default."""
    if task_type is not None and task_type.lease_duration_minutes is not None:
        return task_type.lease_duration_minutes
    return project.config.default_lease_duration_minutes


def max_retries(task_type: TaskType | None, project: Project) -> int:
    """The retry budget a new task gets: the task type's, else the project's default."""
    if task_type is not None and task_type.max_retries is not None:
        return task_type.max_retries
    return project.config.default_max_retries


def start_moment(run_after: float | None, delay_seconds: float | None, now: float
                 ) -> float | None:
    """When a new task comes due: at `run_after`, or `delay_seconds` from now; None (due at
    once) when that moment is not in the future."""
    moment = run_after if run_after is not None else (
        now + delay_seconds if delay_seconds else None)
    return moment if moment is not None and moment > now else None


def priority_of(task_type: TaskType | None, asked: int | None) -> int:
    """A new task's priority: the one asked for, else its type's, else 0."""
    if asked is not None:
        return asked
    return task_type.priority if task_type is not None else 0


def retry_delay(task_type: TaskType | None, retry_count: int) -> float:
    """How long a task waits before its `retry_count`-th retry: the type's delay, fixed or
    doubling from the first retry (delay × 2^(retry_count − 1)), capped."""
    if task_type is None or task_type.retry_delay_seconds <= 0:
        return 0.0
    delay = task_type.retry_delay_seconds
    if task_type.retry_backoff is RetryBackoff.EXPONENTIAL:
        delay *= 2 ** max(0, retry_count - 1)
    return min(delay, task_type.max_retry_delay_seconds)


def lease_expired(task: Task, now: float) -> bool:
    """Whether a running task's lease has run out."""
    return (task.status is TaskStatus.RUNNING and task.lease_expires_at is not None
            and task.lease_expires_at <= now)


def has_retries_left(task: Task) -> bool:
    """Whether a failure or an expired lease would put this task back in the queue."""
    return task.retry_count < task.max_retries


def in_progress(counts: dict[TaskStatus, int]) -> bool:
    """Whether any of the counted tasks is still queued, running or waiting (a batch not
    yet done)."""
    return bool(counts[TaskStatus.QUEUED] or counts[TaskStatus.RUNNING]
                or counts[TaskStatus.WAITING])


def histogram(times: list[float], start: float, bucket_seconds: float, buckets: int
              ) -> list[int]:
    """How many of `times` fall in each of `buckets` intervals from `start`."""
    counts = [0] * buckets
    for moment in times:
        index = int((moment - start) // bucket_seconds)
        if 0 <= index < buckets:
            counts[index] += 1
    return counts


def average_duration(completed: int, duration_total: float) -> float:
    """Mean seconds from assignment to completion; 0 when nothing completed."""
    return round(duration_total / completed, 3) if completed else 0.0


def claim(task: Task, agent_name: str, minutes: float, now: float) -> Task:
    """Lease a queued task to an agent, opening a new running attempt."""
    if task.status is not TaskStatus.QUEUED:
        raise Conflict(f"Task is {task.status.value}, not queued")
    attempt = Attempt(id=new_id(), agent_name=agent_name, started_at=now)
    return replace(task, status=TaskStatus.RUNNING, assigned_to=agent_name, assigned_at=now,
                   lease_expires_at=now + minutes * SECONDS_PER_MINUTE, updated_at=now,
                   run_after=None,
                   attempts=task.attempts + (attempt,))


def require_holder(task: Task, agent_name: str) -> None:
    """Only the agent holding a task's live lease may report on it (409 otherwise, saying
    so plainly when an operator cancelled the task meanwhile)."""
    if task.status is TaskStatus.CANCELLED:
        raise Conflict(f"Task was cancelled: {task.error}")
    if task.status is not TaskStatus.RUNNING or task.assigned_to != agent_name:
        holder = f"assigned to {task.assigned_to}" if task.assigned_to else task.status.value
        raise Conflict(f"Task is not leased to agent {agent_name} (it is {holder})")


def close_attempt(task: Task, status: AttemptStatus, now: float, result: Any = None,
                  error: str | None = None) -> tuple[Attempt, ...]:
    """The task's attempts with the running (last) one ended with `status`."""
    *earlier, last = task.attempts
    closed = replace(last, status=status, ended_at=now, result=result, error=error)
    return (*earlier, closed)


def _release(task: Task, attempt_status: AttemptStatus, error: str, can_retry: bool,
             now: float, task_type: TaskType | None) -> Task:
    """End the running attempt unsuccessfully: requeue if the budget allows (due again after
    the type's retry delay), else fail."""
    released = replace(task, assigned_to=None, assigned_at=None, lease_expires_at=None,
                       error=error, updated_at=now,
                       attempts=close_attempt(task, attempt_status, now, error=error))
    if can_retry and has_retries_left(task):
        retries = task.retry_count + 1
        delay = retry_delay(task_type, retries)
        return replace(released, status=TaskStatus.QUEUED, retry_count=retries,
                       run_after=now + delay if delay > 0 else None)
    return replace(released, status=TaskStatus.FAILED)


def complete(task: Task, agent_name: str, result: Any, outputs: Any, now: float) -> Task:
    """Record success. Completing again by the same agent returns the task unchanged."""
    if task.status is TaskStatus.COMPLETED and task.attempts \
            and task.attempts[-1].agent_name == agent_name:
        return task
    require_holder(task, agent_name)
    return replace(task, status=TaskStatus.COMPLETED, result=result, outputs=outputs,
                   completed_at=now, updated_at=now, lease_expires_at=None, error=None,
                   attempts=close_attempt(task, AttemptStatus.COMPLETED, now, result=result))


def fail(task: Task, agent_name: str, error: str, can_retry: bool, now: float,
         task_type: TaskType | None = None) -> Task:
    """Record a failure reported by the lease holder, with its retry decision."""
    require_holder(task, agent_name)
    return _release(task, AttemptStatus.FAILED, error, can_retry, now, task_type)


def release(task: Task, agent_name: str, now: float) -> Task:
    """Give the holder's task back as if it had never been handed out: `queued` again in its
    old place (its `seq` and priority never changed), lease and assignee cleared,
    `retryCount` unchanged, due at once.

    The running attempt is removed rather than closed with a status of its own: a release
    says "this agent did not work on it" (its command could not start, or `work` was told to
    stop), so it is no attempt; the attempts list stays the list of tries that count
    (`TASKDRIVER_ATTEMPT` stays right) and keeps the four statuses every reader knows. The
    server's log line of the request records who gave what back, and when.
    """
    require_holder(task, agent_name)
    return replace(task, status=TaskStatus.QUEUED, assigned_to=None, assigned_at=None,
                   lease_expires_at=None, run_after=None, updated_at=now,
                   attempts=task.attempts[:-1])


def expire(task: Task, now: float, task_type: TaskType | None = None) -> Task:
    """Reclaim an expired lease: a `timeout` attempt that spends one retry like a failure
    (and waits the same retry delay)."""
    minutes_late = (now - (task.lease_expires_at or now)) / SECONDS_PER_MINUTE
    error = f"Lease held by {task.assigned_to} expired ({minutes_late:.1f} min ago)"
    return _release(task, AttemptStatus.TIMEOUT, error, True, now, task_type)


def extend_lease(task: Task, agent_name: str, minutes: float, now: float) -> Task:
    """Push the holder's lease out: from the later of now and the old expiry."""
    require_holder(task, agent_name)
    base = max(now, task.lease_expires_at or now)
    return replace(task, lease_expires_at=base + minutes * SECONDS_PER_MINUTE, updated_at=now)


def retry(task: Task, now: float) -> Task:
    """Give a failed task back to the queue with a fresh retry budget (operator action)."""
    if task.status is not TaskStatus.FAILED:
        raise Conflict(f"Only failed tasks can be retried; task is {task.status.value}")
    return replace(task, status=TaskStatus.QUEUED, retry_count=0, updated_at=now,
                   run_after=None)


def idempotent_outcome(record: IdempotencyRecord | None, request: Idempotency,
                       now: float) -> dict[str, Any] | None:
    """What an earlier create under the same key made, if it is a repeat within 24 hours.

    The same key with a different request is a client's mistake, refused with a conflict;
    a key older than the window is free to be used again.
    """
    if record is None or record.created_at <= now - IDEMPOTENCY_WINDOW_SECONDS:
        return None
    if record.fingerprint != request.fingerprint:
        raise Conflict("Idempotency-Key was already used with a different request")
    return record.outcome
