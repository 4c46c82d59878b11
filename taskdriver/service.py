"""The one API that views and CLI commands call: authorize, load, apply a rule, commit.

Every method opens exactly the atomic sections it needs, one after the other; a project's
section is never held while the global one is opened, so sections cannot deadlock. Only
this module reads the clock, through `self.now`, and queue changes read it inside their
project's section once they hold what they change, so the times on a task follow the
order of its commits (one attempt never appears to start before the previous one ended).

The queue's writes (claims, outcomes, reaping, creates) run in *shared* project sections
(`_shared`): they hold only the tasks they change, so agents of one project never wait for
each other; a write a concurrent one made impossible is looked at again in a new section.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, TypeVar

from . import access, creation, rules
from .config import Settings
from .errors import Conflict, FieldError, NotFound, TaskDriverError
from .events import QueueEvents
from .models import (
    IDEMPOTENCY_WINDOW_SECONDS,
    OLDEST_FIRST,
    AgentLease,
    BatchProgress,
    BulkOutcome,
    DuplicateHandling,
    Idempotency,
    IdempotencyRecord,
    Lease,
    Principal,
    Project,
    ProjectConfig,
    ProjectStats,
    ProjectStatus,
    ProjectView,
    Reaped,
    RetryBackoff,
    Task,
    TaskFilter,
    TaskOrder,
    TaskSpec,
    TaskStatus,
    TaskType,
    Throughput,
    new_id,
    new_id_within,
)
from .storage import ProjectTx, Storage
from .storage.base import Contention, IdempotencyRecords
from .templates import duplicate_key, placeholders
from .waiting import SessionCheck, WaitHub

RECENT_WINDOW_SECONDS = 3600.0
CONTENTION_ATTEMPTS = 8  # shared sections tried before a Contention reaches the client
_Result = TypeVar("_Result")
# Task type fields taken as given (defaults in `models.TaskType`); retry_backoff converted.
QUEUE_FIELDS = ("priority", "retry_delay_seconds", "max_retry_delay_seconds")


class TaskDriver:
    """Projects, task types, tasks and the lease queue over one storage backend."""

    def __init__(self, storage: Storage, settings: Settings,
                 clock: Callable[[], float] = time.time,
                 events: QueueEvents | None = None,
                 session_check: SessionCheck = lambda keys: {}) -> None:
        """`session_check` tells which agent sessions (by token hash) have ended, so a
        waiting long poll of an ended session is answered at once."""
        self.storage = storage
        self.settings = settings
        self.now = clock
        self.waits = WaitHub(storage.watch, self._availability, session_check,
                             settings.long_poll_capacity, clock)
        self.events = events or QueueEvents()

    @property
    def events(self) -> QueueEvents:
        """Where committed changes and long-poll wakeups are reported (metrics)."""
        return self.waits.events

    @events.setter
    def events(self, events: QueueEvents) -> None:
        self.waits.events = events

    @property
    def storage_provider(self) -> str:
        """Which backend holds the data: `file` or `postgresql`."""
        return self.storage.provider

    def check_storage(self) -> None:
        """Raise StorageError unless storage would take a write now (the health check)."""
        self.storage.check_writable()

    def _report_outcome(self, project_id: str, task: Task) -> None:
        if task.status is TaskStatus.COMPLETED:
            self.events.task_completed(project_id)
        elif task.status is TaskStatus.FAILED:
            self.events.task_failed(project_id)

    # -- projects --------------------------------------------------------------------------

    def _project(self, principal: Principal, reference: str, *, by_name: bool = False,
                 for_new_work: bool = False) -> Project:
        """The one project loader: find, authorize, and (for new work) require it open.

        Path ids are ids; a body's `projectId` (`by_name`) may also be the project's name.
        """
        with self.storage.global_tx(write=False) as tx:
            project = tx.find_project(reference) if by_name else tx.get_project(reference)
        if project is None:
            raise NotFound("Project not found")
        access.require_project(principal, project.id)
        if for_new_work and project.status is ProjectStatus.CLOSED:
            raise Conflict("Project is closed")
        return project

    def resolve_project(self, principal: Principal, reference: str) -> Project:
        """A project named by id or name, as the caller may see it (the operator CLI's
        `--project`, a body's `projectId`)."""
        return self._project(principal, reference, by_name=True)

    def _view(self, project: Project) -> ProjectView:
        with self.storage.project_tx(project.id, write=False) as tx:
            return ProjectView(project, tx.status_counts())

    def list_projects(self, principal: Principal, status: str, limit: int, offset: int
                      ) -> tuple[list[ProjectView], int]:
        with self.storage.global_tx(write=False) as tx:
            projects = [p for p in tx.list_projects()
                        if status == "all" or p.status.value == status]
        if principal.session is not None:
            projects = [p for p in projects if p.id == principal.session.project_id]
        views = []
        for project in projects[offset:offset + limit]:
            try:
                views.append(self._view(project))
            except NotFound:
                continue  # deleted between the two sections
        return views, len(projects)

    def create_project(self, principal: Principal, name: str, description: str = "",
                       instructions: str = "", config: dict[str, Any] | None = None,
                       idempotency: Idempotency | None = None) -> ProjectView:
        access.require_admin(principal, "create projects")
        now = self.now()
        with self.storage.global_tx() as tx:
            earlier = _earlier_outcome(tx, idempotency, now)
            if earlier is None:
                project = Project(id=new_id(), name=name, description=description,
                                  instructions=instructions, status=ProjectStatus.ACTIVE,
                                  config=replace(ProjectConfig(), **(config or {})),
                                  created_at=now, updated_at=now, owner_prefixed_ids=True)
                _refuse_taken_name("project", None, name, tx.project_by_name)
                tx.put_project(project)
                _remember(tx, idempotency, now, {"id": project.id})
                return ProjectView(project, {status: 0 for status in TaskStatus})
            project = _still_there(tx.get_project(earlier["id"]), "project")
        return self._view(project)

    def get_project(self, principal: Principal, project_id: str) -> ProjectView:
        return self._view(self._project(principal, project_id))

    def update_project(self, principal: Principal, project_id: str,
                       changes: dict[str, Any]) -> ProjectView:
        access.require_admin(principal, "update projects")
        with self.storage.global_tx() as tx:
            project = tx.get_project(project_id)
            if project is None:
                raise NotFound("Project not found")
            fields = dict(changes)
            if "config" in fields:
                fields["config"] = replace(project.config, **fields["config"])
            if "status" in fields:
                fields["status"] = ProjectStatus(fields["status"])
            _refuse_taken_name("project", project.name, fields.get("name"), tx.project_by_name)
            project = replace(project, **fields, updated_at=self.now())
            tx.put_project(project)
        return self._view(project)

    def delete_project(self, principal: Principal, project_id: str) -> None:
        """Delete a project, its task types and tasks, and end its agents' sessions."""
        access.require_admin(principal, "delete projects")
        with self.storage.global_tx() as tx:
            if tx.get_project(project_id) is None:
                raise NotFound("Project not found")
            for session in tx.sessions():
                if session.project_id == project_id:
                    tx.delete_session(session.id)
            tx.delete_project(project_id)

    def project_stats(self, principal: Principal, project_id: str) -> ProjectStats:
        project = self._project(principal, project_id)
        with self.storage.project_tx(project.id, write=False) as tx:
            now = self.now()
            counts = tx.status_counts()
            agents = {t.assigned_to for t in tx.running_tasks()
                      if not rules.lease_expired(t, now)}
            recent = tx.recent_activity(now - RECENT_WINDOW_SECONDS)
            delayed = tx.delayed_count(now)
        return ProjectStats(ProjectView(project, counts), counts[TaskStatus.QUEUED],
                            len(agents), recent,
                            rules.average_duration(recent.completed,
                                                   recent.completed_duration_total),
                            delayed)

    # -- task types ------------------------------------------------------------------------

    def _locate_type(self, principal: Principal, type_id: str) -> Project:
        project_id = self.storage.project_of_task_type(type_id)
        if project_id is None:
            raise NotFound("Task type not found")
        return self._project(principal, project_id)

    def list_task_types(self, principal: Principal, project_id: str, limit: int, offset: int
                        ) -> tuple[list[TaskType], int]:
        """One page of the project's task types, oldest first, and how many there are."""
        project = self._project(principal, project_id)
        with self.storage.project_tx(project.id, write=False) as tx:
            task_types = tx.list_task_types()
        return task_types[offset:offset + limit], len(task_types)

    def create_task_type(self, principal: Principal, project_id: str,
                         fields: dict[str, Any], idempotency: Idempotency | None = None
                         ) -> TaskType:
        project = self._project(principal, project_id)
        now = self.now()
        template = fields.get("template")
        task_type = TaskType(
            id=new_id_within(project.id), project_id=project.id, name=fields["name"],
            template=template,
            variables=tuple(fields.get("variables") or placeholders(template)),
            duplicate_handling=DuplicateHandling(fields.get("duplicate_handling", "allow")),
            max_retries=fields.get("max_retries", project.config.default_max_retries),
            lease_duration_minutes=fields.get(
                "lease_duration_minutes", project.config.default_lease_duration_minutes),
            created_at=now, updated_at=now,
            **{name: value for name, value in fields.items() if name in QUEUE_FIELDS})
        if "retry_backoff" in fields:
            task_type = replace(task_type, retry_backoff=RetryBackoff(fields["retry_backoff"]))
        rules.check_placeholders_declared(task_type)
        with self.storage.project_tx(project.id) as tx:
            earlier = _earlier_outcome(tx, idempotency, now)
            if earlier is not None:
                return _still_there(tx.get_task_type(earlier["id"]), "task type")
            _refuse_taken_name("task type", None, task_type.name, tx.task_type_by_name)
            tx.put_task_type(task_type)
            _remember(tx, idempotency, now, {"id": task_type.id})
        return task_type

    def get_task_type(self, principal: Principal, type_id: str) -> TaskType:
        project = self._locate_type(principal, type_id)
        with self.storage.project_tx(project.id, write=False) as tx:
            task_type = tx.get_task_type(type_id)
        if task_type is None:
            raise NotFound("Task type not found")
        return task_type

    def update_task_type(self, principal: Principal, type_id: str,
                         changes: dict[str, Any]) -> TaskType:
        project = self._locate_type(principal, type_id)
        with self.storage.project_tx(project.id) as tx:
            task_type = tx.get_task_type(type_id)
            if task_type is None:
                raise NotFound("Task type not found")
            fields = dict(changes)
            if "variables" in fields:
                fields["variables"] = tuple(fields["variables"])
            elif "template" in fields:
                # Undeclared placeholders of a new template become variables, as on create.
                fields["variables"] = tuple(dict.fromkeys(
                    [*task_type.variables, *placeholders(fields["template"])]))
            if "duplicate_handling" in fields:
                fields["duplicate_handling"] = DuplicateHandling(fields["duplicate_handling"])
            if "retry_backoff" in fields:
                fields["retry_backoff"] = RetryBackoff(fields["retry_backoff"])
            _refuse_taken_name("task type", task_type.name, fields.get("name"),
                               tx.task_type_by_name)
            task_type = replace(task_type, **fields, updated_at=self.now())
            rules.check_placeholders_declared(task_type)
            tx.put_task_type(task_type)
        return task_type

    def delete_task_type(self, principal: Principal, type_id: str) -> None:
        project = self._locate_type(principal, type_id)
        with self.storage.project_tx(project.id) as tx:
            if tx.get_task_type(type_id) is None:
                raise NotFound("Task type not found")
            if tx.task_type_in_use(type_id):
                raise Conflict("Task type is used by queued or running tasks")
            tx.delete_task_type(type_id)

    # -- tasks -----------------------------------------------------------------------------

    def _locate_task(self, principal: Principal, task_id: str) -> Project:
        project_id = self.storage.project_of_task(task_id)
        if project_id is None:
            raise NotFound("Task not found")
        return self._project(principal, project_id)

    @staticmethod
    def _task_in(tx: ProjectTx, task_id: str) -> Task:
        task = tx.get_task(task_id)
        if task is None:
            raise NotFound("Task not found")
        return task

    def create_task(self, principal: Principal, project_id: str, spec: TaskSpec,
                    idempotency: Idempotency | None = None) -> tuple[Task, bool]:
        """Create a task; returns (task, created) where created is False for a duplicate."""
        project = self._project(principal, project_id, for_new_work=True)

        def create(tx: ProjectTx) -> tuple[Task, bool]:
            now = self.now()
            earlier = _earlier_outcome(tx, idempotency, now)
            if earlier is not None:
                return _still_there(tx.get_task(earlier["id"]), "task"), earlier["created"]
            [outcome] = creation.new_tasks(tx, project, [spec], now)
            if isinstance(outcome, TaskDriverError):
                raise outcome
            _remember(tx, idempotency, now, {"id": outcome[0].id, "created": outcome[1]})
            return outcome

        task, created = self._shared(project.id, create)
        if created:
            self.events.tasks_created(project.id, 1)
        return task, created

    def create_tasks(self, principal: Principal, project_id: str,
                     items: Iterable[tuple[int, TaskSpec]],
                     idempotency: Idempotency | None = None) -> BulkOutcome:
        """Create many (index, spec) items in one commit; each succeeds or fails alone."""
        project = self._project(principal, project_id, for_new_work=True)
        indexed = list(items)

        def create(tx: ProjectTx) -> tuple[BulkOutcome, bool]:
            """The outcome, and whether it is new (not a repeat under the same key)."""
            now = self.now()
            earlier = _earlier_outcome(tx, idempotency, now)
            if earlier is not None:
                return BulkOutcome([_still_there(tx.get_task(task_id), "task")
                                    for task_id in earlier["created"]],
                                   earlier["duplicates"], earlier["errors"]), False
            outcomes = creation.new_tasks(tx, project, [spec for _, spec in indexed], now)
            created = [o[0] for o in outcomes if not isinstance(o, TaskDriverError) and o[1]]
            errors = [_item_error(index, o) for (index, _), o in zip(indexed, outcomes, strict=True)
                      if isinstance(o, TaskDriverError)]
            duplicates = len(outcomes) - len(created) - len(errors)
            _remember(tx, idempotency, now, {"created": [task.id for task in created],
                                             "duplicates": duplicates, "errors": errors})
            return BulkOutcome(created, duplicates, errors), True

        outcome, new = self._shared(project.id, create)
        if new:
            self.events.tasks_created(project.id, len(outcome.created))
        return outcome

    def get_task(self, principal: Principal, task_id: str) -> Task:
        project = self._locate_task(principal, task_id)
        with self.storage.project_tx(project.id, write=False) as tx:
            return self._task_in(tx, task_id)

    def list_tasks(self, principal: Principal, project_id: str, task_filter: TaskFilter,
                   limit: int, offset: int, order: TaskOrder = OLDEST_FIRST
                   ) -> tuple[list[Task], int]:
        project = self._project(principal, project_id)
        with self.storage.project_tx(project.id, write=False) as tx:
            return tx.list_tasks(task_filter, limit, offset, order)

    def update_task(self, principal: Principal, task_id: str, spec: TaskSpec,
                    given: set[str]) -> Task:
        """Change a queued task's instructions, variables, batch or description.

        `given` names the fields the caller sent, so that sending null clears a batch or a
        description while leaving it out keeps it."""
        project = self._locate_task(principal, task_id)
        with self.storage.project_tx(project.id) as tx:
            task = self._task_in(tx, task_id)
            if task.status is not TaskStatus.QUEUED:
                raise Conflict(f"Only queued tasks can be updated; task is {task.status.value}")
            task_type = tx.get_task_type(task.type_id) if task.type_id else None
            fields: dict[str, Any] = {"updated_at": self.now()}
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
        project = self._locate_task(principal, task_id)
        with self.storage.project_tx(project.id) as tx:
            task = self._task_in(tx, task_id)
            if task.status is TaskStatus.RUNNING:
                raise Conflict("A running task cannot be deleted; fail it or let it expire")
            tx.delete_task(task_id)

    def retry_task(self, principal: Principal, task_id: str) -> Task:
        access.require_admin(principal, "retry failed tasks")
        project = self._locate_task(principal, task_id)
        with self.storage.project_tx(project.id) as tx:
            task = rules.retry(self._task_in(tx, task_id), self.now())
            tx.put_task(task)
        return task

    def list_batches(self, principal: Principal, project_id: str, limit: int, offset: int
                     ) -> tuple[list[BatchProgress], int]:
        """One page of the project's batches (in order of first use) with their progress."""
        project = self._project(principal, project_id)
        with self.storage.project_tx(project.id, write=False) as tx:
            batch_ids = tx.batch_ids()
            progress = []
            for batch_id in batch_ids[offset:offset + limit]:
                counts = tx.status_counts(batch_id)
                progress.append(BatchProgress(batch_id, counts, not rules.in_progress(counts)))
        return progress, len(batch_ids)

    def throughput(self, principal: Principal, project_id: str, hours: float,
                   bucket_minutes: float) -> Throughput:
        """Completions and failures per `bucket_minutes` over the last `hours` (chart data)."""
        project = self._project(principal, project_id)
        bucket = bucket_minutes * rules.SECONDS_PER_MINUTE
        buckets = max(1, int(hours * 3600 / bucket))
        with self.storage.project_tx(project.id, write=False) as tx:
            now = self.now()
            start = now - buckets * bucket
            completed, failed = tx.outcome_times(start)
        return Throughput(start, bucket, rules.histogram(completed, start, bucket, buckets),
                          rules.histogram(failed, start, bucket, buckets))

    def retry_failed(self, principal: Principal, project_id: str,
                     batch_id: str | None = None, type_id: str | None = None) -> int:
        """Send every failed task of the project (of a batch, of a type) back to the queue
        with a fresh retry budget; returns how many went."""
        access.require_admin(principal, "retry failed tasks")
        project = self._project(principal, project_id)
        wanted = TaskFilter(status=TaskStatus.FAILED, batch_id=batch_id, type_id=type_id)
        with self.storage.project_tx(project.id) as tx:
            now = self.now()
            failed, _ = tx.list_tasks(wanted, limit=sys.maxsize, offset=0)
            for task in failed:
                tx.put_task(rules.retry(task, now))
        return len(failed)

    def batch_progress(self, principal: Principal, project_id: str, batch_id: str
                       ) -> BatchProgress:
        project = self._project(principal, project_id)
        with self.storage.project_tx(project.id, write=False) as tx:
            counts = tx.status_counts(batch_id)
        if not any(counts.values()):
            raise NotFound("Batch not found")
        return BatchProgress(batch_id, counts, done=not rules.in_progress(counts))

    # -- the queue -------------------------------------------------------------------------

    def _shared(self, project_id: str, work: Callable[[ProjectTx], _Result]) -> _Result:
        """Run `work` in a shared section of the project (see `storage.base`): again, in a
        new section, when a concurrent writer made one of its writes fail (`Contention`),
        so it looks afresh (say, at the task that writer stored)."""
        for attempt in range(1, CONTENTION_ATTEMPTS + 1):
            try:
                with self.storage.project_tx(project_id, shared=True) as tx:
                    return work(tx)
            except Contention:
                if attempt == CONTENTION_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _reap(tx: ProjectTx, now: float) -> tuple[Reaped, list[Task]]:
        """Expire every lapsed lease that no other section is changing; returns the counts
        and the tasks as they are now."""
        expired = [t for t in tx.expired_leases(now) if rules.lease_expired(t, now)]
        reclaimed = [rules.expire(task, now, _type_of(tx, task)) for task in expired]
        for task in reclaimed:
            tx.put_task(task)
        return Reaped(len(expired), len({t.assigned_to for t in expired})), reclaimed

    def _reap_and_purge(self, tx: ProjectTx) -> tuple[Reaped, list[Task]]:
        """The cron job's pass over one project: expired leases, then old idempotency keys."""
        now = self.now()
        reaped = self._reap(tx, now)
        tx.purge_idempotency(now - IDEMPOTENCY_WINDOW_SECONDS)
        return reaped

    def _report_reaped(self, project_id: str, reclaimed: list[Task]) -> None:
        if reclaimed:
            self.events.leases_expired(project_id, len(reclaimed))
        for task in reclaimed:
            self._report_outcome(project_id, task)

    def next_task(self, principal: Principal, agent_name: str, project_ref: str | None,
                  wait_seconds: float = 0.0) -> Lease | None:
        """Resume the agent's live lease, else reap expired leases and lease the oldest
        queued task; with nothing to give, wait up to `wait_seconds` for something.

        While waiting the request holds no lock and no connection: it sleeps until this
        process's watcher of the project wakes it (`waiting.py`), then tries again.
        """
        acting = access.acting_agent(principal, agent_name)
        if project_ref is None:
            if principal.session is None:
                raise FieldError("projectId", "projectId is required with an operator token")
            project_ref = principal.session.project_id
        project = self._project(principal, project_ref, by_name=True, for_new_work=True)
        # The operator may cap waits below what agents ask (say, for a proxy's idle timeout).
        wait_seconds = min(wait_seconds, self.settings.long_poll_max_seconds)
        if wait_seconds <= 0:
            return self._lease_next(project, acting)
        deadline = time.monotonic() + wait_seconds
        session_key = principal.session.token_hash if principal.session else None
        with self.waits.enter(project.id, session_key) as waiter:
            while True:
                lease = self._lease_next(project, acting)
                remaining = deadline - time.monotonic()
                if lease is not None or remaining <= 0 or waiter.closing:
                    return lease
                if not waiter.wait(remaining):
                    return None
                if waiter.ended is not None:
                    raise waiter.ended

    def _lease_next(self, project: Project, acting: str) -> Lease | None:
        """One attempt at next-task: the agent's live lease, else the next due task.

        Claims of one project run side by side: each takes a due task no other section
        holds. Should this agent's other request claim first, the store refuses a second
        running task and the next attempt finds the first one held."""
        def attempt(tx: ProjectTx) -> tuple[Task | None, list[Task]]:
            now = self.now()
            held = tx.task_held_by(acting)
            if held is not None and not rules.lease_expired(held, now):
                return held, []
            _, reclaimed = self._reap(tx, now)
            task = tx.claim_next(now)
            leased = None
            if task is not None:
                now = self.now()  # read again holding the task: after its last change
                minutes = rules.lease_minutes(_type_of(tx, task), project)
                leased = rules.claim(task, acting, minutes, now)
                tx.put_task(leased)
            return leased, reclaimed

        leased, reclaimed = self._shared(project.id, attempt)
        self._report_reaped(project.id, reclaimed)
        return None if leased is None else Lease(leased, project)

    def _availability(self, project_id: str, now: float) -> tuple[int, float | None]:
        """For the long-poll watcher: how many tasks could be leased now, and the soonest
        future moment a lease ends or a delayed task comes due (None: nothing will)."""
        with self.storage.project_tx(project_id, write=False) as tx:
            available = self._leasable(tx, now)
            moments = [t.lease_expires_at for t in tx.running_tasks()]
            moments.append(tx.next_run_after(now))
        return available, min((m for m in moments if m is not None and m > now), default=None)

    @staticmethod
    def _leasable(tx: ProjectTx, now: float) -> int:
        """Queued and due, plus expired leases that will be reclaimed into the queue (and
        due at once, with no retry delay)."""
        expired = sum(1 for t in tx.running_tasks() if rules.lease_expired(t, now)
                      and rules.has_retries_left(t)
                      and rules.retry_delay(_type_of(tx, t), t.retry_count + 1) == 0)
        return tx.status_counts()[TaskStatus.QUEUED] - tx.delayed_count(now) + expired

    def peek(self, principal: Principal, project_id: str) -> int:
        """How many tasks could be leased now (see `_leasable`)."""
        project = self._project(principal, project_id)
        with self.storage.project_tx(project.id, write=False) as tx:
            return self._leasable(tx, self.now())

    def agents(self, principal: Principal, project_id: str) -> list[AgentLease]:
        project = self._project(principal, project_id)
        with self.storage.project_tx(project.id, write=False) as tx:
            now = self.now()
            return [AgentLease(t.assigned_to or "", t) for t in tx.running_tasks()
                    if not rules.lease_expired(t, now)]

    def _settle(self, principal: Principal, task_id: str, agent_name: str | None,
                outcome: Callable[[Task, str, float, TaskType | None], Task]) -> Task:
        """Apply a lease holder's outcome (with the task's type, for its retry delay)."""
        project = self._locate_task(principal, task_id)

        def settle(tx: ProjectTx) -> tuple[Task, Task]:
            task = tx.lock_task(task_id)  # only this task: other agents go on meanwhile
            if task is None:
                raise NotFound("Task not found")
            acting = access.acting_agent(principal, agent_name, fallback=task.assigned_to)
            settled = outcome(task, acting, self.now(), _type_of(tx, task))
            if settled is not task:
                tx.put_task(settled)
            return task, settled

        task, settled = self._shared(project.id, settle)
        if settled is not task and settled.status is not task.status:
            self._report_outcome(project.id, settled)
        return settled

    def complete_task(self, principal: Principal, task_id: str, agent_name: str | None,
                      result: Any, outputs: Any) -> Task:
        return self._settle(principal, task_id, agent_name,
                            lambda t, a, now, _: rules.complete(t, a, result, outputs, now))

    def fail_task(self, principal: Principal, task_id: str, agent_name: str | None,
                  error: str, can_retry: bool) -> Task:
        return self._settle(principal, task_id, agent_name,
                            lambda t, a, now, kind: rules.fail(t, a, error, can_retry, now, kind))

    def release_task(self, principal: Principal, task_id: str, agent_name: str | None
                     ) -> Task:
        """The holder gives its task back untouched (no attempt, no retry spent)."""
        return self._settle(principal, task_id, agent_name,
                            lambda t, a, now, _: rules.release(t, a, now))

    def extend_lease(self, principal: Principal, task_id: str, agent_name: str | None,
                     minutes: float) -> Task:
        return self._settle(principal, task_id, agent_name,
                            lambda t, a, now, _: rules.extend_lease(t, a, minutes, now))

    def reap_project(self, principal: Principal, project_id: str) -> Reaped:
        """Reclaim one project's expired leases now (the `cleanup-leases` route)."""
        project = self._project(principal, project_id)
        counts, reclaimed = self._shared(project.id, lambda tx: self._reap(tx, self.now()))
        self._report_reaped(project.id, reclaimed)
        return counts

    def reap(self, project_ids: list[str] | None = None) -> Reaped:
        """The cron job: reclaim expired leases in the given projects (all by default) and
        forget idempotency keys past their 24 hours."""
        if project_ids is None:
            with self.storage.global_tx() as tx:
                project_ids = [p.id for p in tx.list_projects()]
                tx.purge_idempotency(self.now() - IDEMPOTENCY_WINDOW_SECONDS)
        tasks = agents = 0
        for project_id in project_ids:
            try:
                counts, reclaimed = self._shared(project_id, self._reap_and_purge)
            except NotFound:
                continue  # deleted meanwhile
            self._report_reaped(project_id, reclaimed)
            tasks += counts.tasks
            agents += counts.agents
        return Reaped(tasks, agents)


def _type_of(tx: ProjectTx, task: Task) -> TaskType | None:
    return tx.get_task_type(task.type_id) if task.type_id else None


def _earlier_outcome(tx: IdempotencyRecords, request: Idempotency | None, now: float
                     ) -> dict[str, Any] | None:
    """What the first create under this request's Idempotency-Key made, for a repeat."""
    if request is None:
        return None
    return rules.idempotent_outcome(tx.get_idempotency(request.key), request, now)


def _remember(tx: IdempotencyRecords, request: Idempotency | None, now: float,
              outcome: dict[str, Any]) -> None:
    """Keep what a create made under its Idempotency-Key, in the create's own commit."""
    if request is not None:
        tx.put_idempotency(IdempotencyRecord(request.key, request.fingerprint, now, outcome))


_Record = TypeVar("_Record")


def _still_there(record: _Record | None, noun: str) -> _Record:
    """A record an earlier create made; it may have been deleted since."""
    if record is None:
        raise NotFound(f"The {noun} created under this Idempotency-Key was deleted since")
    return record


def _refuse_taken_name(noun: str, current: str | None, wanted: str | None,
                       find: Callable[[str], object | None]) -> None:
    """Names are unique (per project for task types): 409 when another record has it."""
    if wanted is not None and wanted != current and find(wanted) is not None:
        raise Conflict(f"A {noun} named {wanted} already exists")


def _item_error(index: int, exc: TaskDriverError) -> dict[str, Any]:
    item: dict[str, Any] = {"index": index, "error": exc.message}
    if isinstance(exc, FieldError):
        item["validationDetails"] = exc.details
    return item
