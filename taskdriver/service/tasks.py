"""Tasks: create them (one or a bulk, set-wise), list, read, update, delete, retry.

A create runs in a shared project section. Each spec is checked alone (its type, variables
and instructions, by `rules`), then the duplicate keys of every spec are looked up in one
query and the new tasks stored in one go (`ProjectTx.add_tasks`). A spec answered by a task
made earlier in the same bulk sees it as a duplicate, exactly as if the specs had come one
by one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, NamedTuple

from .. import access, rules
from ..answers import OLDEST_FIRST, BulkOutcome, ItemError, TaskFilter, TaskOrder
from ..dependencies import TaskDetail
from ..errors import Conflict, FieldError, TaskDriverError
from ..inputs import TaskSpec
from ..models import (
    DependencyFailure,
    Idempotency,
    Principal,
    Project,
    Task,
    TaskStatus,
    TaskType,
    new_ids_within,
)
from ..storage import ProjectTx
from ..templates import duplicate_key
from . import dependencies
from .archive import find_archived
from .base import Core, authorized, earlier_outcome, remember, still_there, task_in, type_of

Outcome = tuple[Task, bool] | TaskDriverError
"""Per spec: (the new task, True), (the task it duplicates, False), or why it was refused."""


class _Draft(NamedTuple):
    spec: TaskSpec
    task_type: TaskType | None
    instructions: str
    key: str | None


def new_tasks(tx: ProjectTx, project: Project, specs: list[TaskSpec], now: float
              ) -> list[Outcome]:
    """Check, deduplicate and store the tasks these specs ask for; an outcome per spec."""
    types: dict[str, TaskType | None] = {}
    drafts = [_draft(tx, types, spec) for spec in specs]
    # Only a create with dependencies looks them up (and sees this create's earlier tasks).
    wanted = any(spec.depends_on or spec.depends_on_batch for spec in specs)
    lookups = dependencies.Lookups(tx, creating=True) if wanted else None
    unique = {d.key for d in drafts
              if isinstance(d, _Draft) and d.key and rules.checks_duplicates(d.task_type)}
    holders = tx.find_duplicates(unique) if unique else {}
    checked = sum(isinstance(d, _Draft) for d in drafts)
    seqs = iter(tx.next_seqs(checked))
    ids = iter(new_ids_within(project.id, checked))
    outcomes: list[Outcome] = []
    created: list[Task] = []
    for draft in drafts:
        if not isinstance(draft, _Draft):
            outcomes.append(draft)
            continue
        try:
            if lookups is not None:
                dependencies.check_spec(lookups, draft.spec)
            existing = rules.duplicate_of(draft.task_type,
                                          holders.get(draft.key) if draft.key else None)
        except TaskDriverError as exc:
            outcomes.append(exc)
            continue
        if existing is not None:  # an `ignore` type answers with the task already there
            outcomes.append((existing, False))
            continue
        task = _task(project, draft, next(ids), next(seqs), now)
        if lookups is not None:
            task = dependencies.starting(lookups, task, now)
            lookups.added(task)
        if task.duplicate_key in unique:
            holders[task.duplicate_key] = task
        created.append(task)
        outcomes.append((task, True))
    tx.add_tasks(created, unique)
    return outcomes


def _draft(tx: ProjectTx, types: dict[str, TaskType | None], spec: TaskSpec
           ) -> _Draft | TaskDriverError:
    """A spec checked against its type (looked up once per bulk), or why it is refused."""
    task_type = None
    try:
        if spec.type_id is not None:
            if spec.type_id not in types:
                types[spec.type_id] = tx.get_task_type(spec.type_id)
            task_type = types[spec.type_id]
            if task_type is None:
                raise FieldError("typeId", "Task type not found in this project", spec.type_id)
        variables = spec.variables or {}
        instructions = rules.instructions_for(task_type, variables, spec.instructions)
    except TaskDriverError as exc:
        return exc
    key = duplicate_key(task_type.id, variables) if task_type else None
    return _Draft(spec, task_type, instructions, key)


def _task(project: Project, draft: _Draft, task_id: str, seq: int, now: float) -> Task:
    spec, task_type = draft.spec, draft.task_type
    return Task(id=task_id, project_id=project.id, seq=seq,
                type_id=spec.type_id, instructions=draft.instructions,
                variables=spec.variables or {}, batch_id=spec.batch_id,
                description=spec.description,
                priority=rules.priority_of(task_type, spec.priority),
                run_after=rules.start_moment(spec.run_after, spec.delay_seconds, now),
                status=TaskStatus.QUEUED, max_retries=rules.max_retries(task_type, project),
                created_at=now, updated_at=now, duplicate_key=draft.key,
                depends_on=spec.depends_on, depends_on_batch=spec.depends_on_batch,
                on_dependency_failure=spec.on_dependency_failure or DependencyFailure.FAIL)


class Tasks:
    """A project's tasks, outside the lease queue's transitions."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def create_task(self, principal: Principal, project_id: str, spec: TaskSpec,
                    idempotency: Idempotency | None = None) -> tuple[Task, bool]:
        """Create a task; returns (task, created) where created is False for a duplicate."""
        project = self.core.project(principal, project_id, for_new_work=True)

        def create(tx: ProjectTx) -> tuple[Task, bool]:
            now = self.core.now()
            earlier = earlier_outcome(tx, idempotency, now)
            if earlier is not None:
                return still_there(tx.get_task(earlier["id"]), "task"), earlier["created"]
            [outcome] = new_tasks(tx, project, [spec], now)
            if isinstance(outcome, TaskDriverError):
                raise outcome
            remember(tx, idempotency, now, {"id": outcome[0].id, "created": outcome[1]})
            return outcome

        task, created = self.core.shared(project.id, create)
        if created:
            self.core.events.tasks_created(project.id, 1)
        return task, created

    def create_tasks(self, principal: Principal, project_id: str,
                     items: Iterable[tuple[int, TaskSpec]],
                     idempotency: Idempotency | None = None) -> BulkOutcome:
        """Create many (index, spec) items in one commit; each succeeds or fails alone."""
        project = self.core.project(principal, project_id, for_new_work=True)
        indexed = list(items)

        def create(tx: ProjectTx) -> tuple[BulkOutcome, bool]:
            """The outcome, and whether it is new (not a repeat under the same key)."""
            now = self.core.now()
            earlier = earlier_outcome(tx, idempotency, now)
            if earlier is not None:
                return BulkOutcome([still_there(tx.get_task(task_id), "task")
                                    for task_id in earlier["created"]],
                                   earlier["duplicates"],
                                   [_item_error_of(kept) for kept in earlier["errors"]]), False
            outcomes = new_tasks(tx, project, [spec for _, spec in indexed], now)
            created = [o[0] for o in outcomes if not isinstance(o, TaskDriverError) and o[1]]
            errors = [_item_error(index, o) for (index, _), o in zip(indexed, outcomes, strict=True)
                      if isinstance(o, TaskDriverError)]
            duplicates = len(outcomes) - len(created) - len(errors)
            remember(tx, idempotency, now, {"created": [task.id for task in created],
                                            "duplicates": duplicates,
                                            "errors": [_kept(error) for error in errors]})
            return BulkOutcome(created, duplicates, errors), True

        outcome, new = self.core.shared(project.id, create)
        if new:
            self.core.events.tasks_created(project.id, len(outcome.created))
        return outcome

    def get_task(self, principal: Principal, task_id: str) -> Task:
        """A task, live or archived (an `ArchivedTask`), as the caller may see it."""
        return self.task_detail(principal, task_id).task

    def task_detail(self, principal: Principal, task_id: str) -> TaskDetail:
        """A task with what it waits for and what waits for it; an archived task alone
        (what it waited for is finished, and nothing live waits for it)."""
        found = self.core.storage.project_of_task(task_id)
        if found is not None:
            project = authorized(principal, found)
            with self.core.storage.project_tx(project.id, write=False) as tx:
                task = tx.get_task(task_id)
                if task is not None:
                    return dependencies.detail(tx, task)
        return TaskDetail(find_archived(self.core, principal, task_id))  # or archived meanwhile

    def list_tasks(self, principal: Principal, project_id: str, task_filter: TaskFilter,
                   limit: int, offset: int, order: TaskOrder = OLDEST_FIRST,
                   archived: bool = False) -> tuple[list[Task], int]:
        """One page of the project's tasks that pass the filter, and how many do; with
        `archived`, of its archive instead (in archive order, oldest first)."""
        project = self.core.project(principal, project_id)
        with self.core.storage.project_tx(project.id, write=False) as tx:
            if archived:
                found, total = tx.list_archived(task_filter, limit, offset)
                return list(found), total
            return tx.list_tasks(task_filter, limit, offset, order)

    def update_task(self, principal: Principal, task_id: str, spec: TaskSpec,
                    given: set[str]) -> Task:
        """Change a queued task's instructions, variables, batch or description.

        `given` names the fields the caller sent, so that sending null clears a batch or a
        description while leaving it out keeps it."""
        project = self.core.project_of_task(principal, task_id)
        with self.core.storage.project_tx(project.id) as tx:
            task = task_in(tx, task_id)
            if task.status is not TaskStatus.QUEUED:
                raise Conflict(f"Only queued tasks can be updated; task is {task.status.value}")
            if "batch_id" in given and spec.batch_id != task.batch_id and task.batch_id:
                dependencies.refuse_if_batch_depended_on(tx, task.batch_id)
            task_type = type_of(tx, task)
            fields: dict[str, Any] = {"updated_at": self.core.now()}
            for name in ("batch_id", "description"):
                if name in given:
                    fields[name] = getattr(spec, name)
            if spec.priority is not None:
                fields["priority"] = spec.priority
            if spec.variables is not None:
                fields["variables"] = spec.variables
                fields["instructions"] = rules.instructions_for(task_type, spec.variables,
                                                                spec.instructions)
                if task_type is not None:
                    key = duplicate_key(task_type.id, spec.variables)
                    other = rules.duplicate_of(task_type, tx.find_duplicate(key), task.id)
                    if other is not None:  # a change cannot answer with the other task
                        raise Conflict(f"Duplicate of task {other.id}")
                    fields["duplicate_key"] = key
            elif spec.instructions is not None:
                fields["instructions"] = spec.instructions
            task = replace(task, **fields)
            tx.put_task(task)
        return task

    def delete_task(self, principal: Principal, task_id: str) -> None:
        """Delete a task that is not running."""
        project = self.core.project_of_task(principal, task_id)
        with self.core.storage.project_tx(project.id) as tx:
            task = task_in(tx, task_id)
            if task.status is TaskStatus.RUNNING:
                raise Conflict("A running task cannot be deleted; fail it or let it expire")
            dependencies.refuse_delete_if_depended_on(tx, task)
            tx.delete_task(task_id)

    def retry_task(self, principal: Principal, task_id: str) -> Task:
        """Send one failed task back to the queue with a fresh retry budget."""
        access.require_admin(principal, "retry failed tasks")
        project = self.core.project_of_task(principal, task_id)
        with self.core.storage.project_tx(project.id) as tx:
            task = dependencies.retried(tx, rules.retry(task_in(tx, task_id), self.core.now()))
            tx.put_task(task)
        return task

    def retry_failed(self, principal: Principal, project_id: str,
                     batch_id: str | None = None, type_id: str | None = None) -> int:
        """Send every failed task of the project (of a batch, of a type) back to the queue
        with a fresh retry budget; returns how many went. Oldest first, so a dependency
        goes back before its dependents, which then wait for it; a dependent whose
        dependency stays failed stays failed too."""
        access.require_admin(principal, "retry failed tasks")
        project = self.core.project(principal, project_id)
        wanted = TaskFilter(status=TaskStatus.FAILED, batch_id=batch_id, type_id=type_id)
        with self.core.storage.project_tx(project.id) as tx:
            now = self.core.now()
            failed, _ = tx.list_tasks(wanted, limit=sys.maxsize, offset=0)
            retried = 0
            for task in failed:
                try:
                    tx.put_task(dependencies.retried(tx, rules.retry(task, now)))
                except Conflict:
                    continue
                retried += 1
        return retried


def _item_error(index: int, exc: TaskDriverError) -> ItemError:
    return ItemError(index, exc.message, exc.details if isinstance(exc, FieldError) else None)


def _kept(error: ItemError) -> dict[str, Any]:
    """An item's error as its Idempotency-Key record keeps it."""
    return {"index": error.index, "error": error.message, "details": error.details}


def _item_error_of(kept: dict[str, Any]) -> ItemError:
    """An item's error from its record; records written before the service had its own
    shape (within the keys' 24 hours of an upgrade) hold the API's `validationDetails`."""
    return ItemError(kept["index"], kept["error"],
                     kept.get("details", kept.get("validationDetails")))
