"""The fleet controls: claims that respect paused and limited task types, and cancel.

What is eligible and what a cancel does are `controls.py`'s rules; this module loads what
they need (a type's running count and recent lease starts, through the storage contract's
`type_load`) and commits what they decide. A claim of a controlled type holds the type
(`type_load(lock=True)`) while it decides, so the limits hold across every worker of a
host and every host of a PostgreSQL deployment.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .. import access, controls
from ..answers import TaskFilter, TypeLoad
from ..errors import NotFound
from ..models import MAX_RATE_SECONDS, Principal, Task, TaskStatus, TaskType
from ..storage import ProjectTx
from . import dependencies
from .base import Core


def _load(tx: ProjectTx, task_type: TaskType, now: float) -> TypeLoad:
    return tx.type_load(task_type.id, controls.rate_window_start(task_type, now))


def blocked_types(tx: ProjectTx, types: dict[str, TaskType], now: float) -> set[str]:
    """The types whose tasks may not be leased now, as far as a look without holding them
    tells (a claim checks again holding the type: `claim_eligible`)."""
    return {type_id for type_id, task_type in types.items() if task_type.controlled
            and (task_type.paused  # nothing to read: a paused type leases nothing
                 or not controls.may_lease(task_type, _load(tx, task_type, now)))}


def claim_eligible(tx: ProjectTx, clock: Callable[[], float]
                   ) -> tuple[Task, TaskType | None, float] | None:
    """Claim the next task that may be leased now, with its type and the moment its lease
    begins: the usual priority-then-age order over the types not paused, not at their
    `maxConcurrent`, with rate to spare.

    A claimed task of a controlled type is kept only once its type is held and its load
    read again, as of a clock read while holding it (a claim that waited for the type
    counts its lease from when it got it); a type found full then is passed over like the
    others (no head-of-line blocking). A rate-limited lease is recorded in the same commit.
    """
    types = {t.id: t for t in tx.list_task_types()}
    excluded = blocked_types(tx, types, clock())
    while True:
        task = tx.claim_next(clock(), excluded)
        if task is None:
            return None
        task_type = types.get(task.type_id or "")
        if task_type is None or not task_type.controlled:
            return task, task_type, clock()  # read holding the task: after its last change
        held = tx.type_load(task_type.id, None, lock=True)  # hold the type, then look
        now = clock()
        load = held if task_type.rate_limit is None else _load(tx, task_type, now)
        if controls.may_lease(task_type, load):
            if task_type.rate_limit is not None:
                tx.record_lease_start(task_type.id, now, now - MAX_RATE_SECONDS)
            return task, task_type, now
        excluded.add(task_type.id)


def held_back(tx: ProjectTx, now: float) -> int:
    """How many due queued tasks the controls keep from being leased now: all of a paused
    or spent type's, and those of a limited type beyond the leases it may still begin."""
    count = 0
    for task_type in tx.list_task_types():
        if not task_type.controlled:
            continue
        room = controls.room(task_type, _load(tx, task_type, now))
        if room is not None:
            due = tx.due_count(task_type.id, now)
            count += due - min(due, room)
    return count


class Cancels:
    """Operators ending queued and running tasks for good."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def cancel_task(self, principal: Principal, task_id: str, reason: str | None) -> Task:
        """Cancel one queued or running task (its holder's later reports get 409)."""
        access.require_admin(principal, "cancel tasks")
        project = self.core.project_of_task(principal, task_id)

        def cancel(tx: ProjectTx) -> tuple[Task, list[Task]]:
            task = tx.lock_task(task_id)  # only this task: the queue goes on meanwhile
            if task is None:
                raise NotFound("Task not found")
            now = self.core.now()
            cancelled = controls.cancel(task, reason, now)
            tx.put_task(cancelled)
            # Its dependents fail (or run) in this same commit, as after a failure.
            return cancelled, dependencies.release_dependents(tx, [cancelled], now)

        cancelled, released = self.core.shared(project.id, cancel)
        for moved in released:
            self.core.report_outcome(project.id, moved)
        return cancelled

    def cancel_tasks(self, principal: Principal, project_id: str, batch_id: str | None,
                     type_id: str | None, status: TaskStatus | None) -> int:
        """Cancel every unfinished task of the project matching the filters, in one commit;
        returns how many were cancelled."""
        access.require_admin(principal, "cancel tasks")
        project = self.core.project(principal, project_id)
        cancelled: list[Task] = []
        with self.core.storage.project_tx(project.id) as tx:  # exclusive: reads many
            now = self.core.now()
            for wanted in controls.cancellable(status):
                task_filter = TaskFilter(status=wanted, batch_id=batch_id, type_id=type_id)
                tasks, _ = tx.list_tasks(task_filter, limit=sys.maxsize, offset=0)
                cancelled += [controls.cancel(task, None, now) for task in tasks]
            tx.put_tasks(cancelled)
            released = dependencies.release_dependents(tx, cancelled, now)
        for moved in released:
            self.core.report_outcome(project.id, moved)
        return len(cancelled)
