"""One PostgreSQL project section: task types, tasks and the queue's lookups and claims.

A shared section (see `base`) locks only the task rows it changes: `claim_next` and
`expired_leases` pass over rows other transactions hold (`FOR UPDATE SKIP LOCKED`), and
the unique indexes of migration 0004 refuse an agent's second running task and a second
live holder of a unique duplicate key; `postgres.py` turns those refusals into
`Contention`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import psycopg

from ..answers import OLDEST_FIRST, RecentActivity, TaskFilter, TaskOrder, TypeLoad
from ..models import Task, TaskStatus, TaskType
from .base import ProjectTx
from .codec import decode_task, decode_task_type
from .postgres_archive import PostgresArchive
from .postgres_sections import QUERIES, Pipeline, Section, as_json, json_text

# The columns copied beside each task's JSON, as `put_task` writes them.
_TASK_COLUMNS = ("id", "seq", "status", "type_id", "batch_id", "assigned_to", "duplicate_key",
                 "assigned_at", "completed_at", "lease_expires_at", "updated_at", "priority",
                 "run_after")


def _columns(task: Task) -> dict[str, Any]:
    values = {name: getattr(task, name) for name in _TASK_COLUMNS}
    values["status"] = task.status.value
    # One text per task (NULL: none), split again by the query: see `put_task` in SQL.
    values["depends_on"] = ",".join(task.depends_on) or None
    values["depends_on_batch"] = task.depends_on_batch
    return values


class PostgresProjectTx(Section, PostgresArchive, ProjectTx):
    """`task_types`: the project's types as the section's first statement read them (a
    shared section's, see `share_project`), answered without asking again."""

    def __init__(self, connection: psycopg.Connection[Any], pipeline: Pipeline | None,
                 project_id: str, task_types: list[TaskType] | None = None) -> None:
        super().__init__(connection, pipeline, project_id)
        self.project_id = project_id
        self._notified = False
        self._task_types = task_types

    def get_task_type(self, type_id: str) -> TaskType | None:
        if self._task_types is not None:
            return next((t for t in self._task_types if t.id == type_id), None)
        raw = self._one("get_task_type", id=type_id, project_id=self.project_id)
        return None if raw is None else decode_task_type(raw)

    def task_type_by_name(self, name: str) -> TaskType | None:
        raw = self._one("task_type_by_name", project_id=self.project_id, name=name)
        return None if raw is None else decode_task_type(raw)

    def list_task_types(self) -> list[TaskType]:
        if self._task_types is not None:
            return list(self._task_types)
        return [decode_task_type(raw)
                for raw in self._all("list_task_types", project_id=self.project_id)]

    def put_task_type(self, task_type: TaskType) -> None:
        self._change("put_task_type", id=task_type.id, project_id=self.project_id,
                     name=task_type.name, data=as_json(task_type))
        self._task_types = None  # read from the table again
        self._notify_work()  # a type resumed or given room: its tasks may be leased now

    def delete_task_type(self, type_id: str) -> None:
        self._change("delete_task_type", id=type_id, project_id=self.project_id)
        self._task_types = None  # read from the table again

    def task_type_in_use(self, type_id: str) -> bool:
        return self._one("task_type_in_use", type_id=type_id) is not None

    def _task(self, query: str, /, **params: Any) -> Task | None:
        raw = self._one(query, project_id=self.project_id, **params)
        return None if raw is None else decode_task(raw)

    def _tasks(self, query: str, /, **params: Any) -> list[Task]:
        return [decode_task(raw)
                for raw in self._all(query, project_id=self.project_id, **params)]

    def get_task(self, task_id: str) -> Task | None:
        return self._task("get_task", id=task_id)

    def lock_task(self, task_id: str) -> Task | None:
        return self._task("lock_task", id=task_id)

    def put_task(self, task: Task) -> None:
        self._change("put_task", **_columns(task), project_id=self.project_id,
                     data=as_json(task))
        if task.status is TaskStatus.QUEUED:
            self._notify_work()

    def put_tasks(self, tasks: Sequence[Task]) -> None:
        self._check_write()
        # One statement however many: since migration 0009 a row trigger counts each
        # task's move (the statement trigger it replaced joined the rows, growing with
        # their square, which needed the tasks sent 500 at a time).
        rows = [_columns(task) for task in tasks]
        columns = {name: [row[name] for row in rows] for name in _TASK_COLUMNS
                   if name not in ("seq", "type_id")}  # fixed at creation
        self._run("put_tasks", **columns, project_id=self.project_id,
                  data=[json_text(task) for task in tasks])
        if any(task.status is TaskStatus.QUEUED for task in tasks):
            self._notify_work()

    def add_tasks(self, tasks: Sequence[Task], unique_keys: Collection[str]) -> None:
        """One COPY of the new rows: the server reads them in a stream, where the INSERT
        from 17 unnested arrays it replaced spent a third of its time taking the arrays
        apart (1,000 tasks into 100,000: 41 ms a transaction, 29 ms with COPY). COPY runs
        outside pipeline mode, so the section's pipeline pauses around it."""
        self._check_write()
        if not tasks:
            return
        assert self.pipeline is not None  # `_check_write`: a writer's section
        project_id = self.project_id
        with self.pipeline.paused(), self._cursor.copy(QUERIES["add_tasks"]) as copy:
            for task in tasks:
                key = task.duplicate_key
                copy.write_row((
                    task.id, project_id, task.seq, task.status.value, task.type_id,
                    task.batch_id, task.assigned_to, key,
                    key if key in unique_keys else None, task.assigned_at,
                    task.completed_at, task.lease_expires_at, task.updated_at, task.priority,
                    task.run_after, list(task.depends_on) or None, task.depends_on_batch,
                    json_text(task)))
        if any(task.status is TaskStatus.QUEUED for task in tasks):
            self._notify_work()

    def _notify_work(self) -> None:
        if not self._notified:  # once per transaction
            self._run("notify_work", project_id=self.project_id)
            self._notified = True

    def delete_task(self, task_id: str) -> None:
        self._change("delete_task", id=task_id, project_id=self.project_id)

    def next_seqs(self, count: int) -> list[int]:
        return [int(seq) for seq in self._all("next_seqs", count=count)]

    def next_due(self, now: float, excluded_types: Collection[str] = ()) -> Task | None:
        if excluded_types:
            return self._task("next_due_excluding", now=now, excluded=list(excluded_types))
        return self._task("next_due", now=now)

    def claim_next(self, now: float, excluded_types: Collection[str] = ()) -> Task | None:
        if excluded_types:  # only then: a claim with no type held back is unchanged
            return self._task("claim_next_excluding", now=now,
                              excluded=list(excluded_types))
        return self._task("claim_next", now=now)

    def type_load(self, type_id: str, since: float | None, lock: bool = False) -> TypeLoad:
        if lock:
            self._run("lock_task_type", type_id=type_id)
        running = int(self._one("running_of_type", type_id=type_id))
        recent = (0 if since is None else
                  int(self._one("lease_starts_since", type_id=type_id, since=since)))
        return TypeLoad(running, recent)

    def record_lease_start(self, type_id: str, at: float, forget_before: float) -> None:
        self._change("record_lease_start", type_id=type_id, at=at, before=forget_before)

    def due_count(self, type_id: str, now: float) -> int:
        return int(self._one("due_count_of_type", project_id=self.project_id,
                             type_id=type_id, now=now))

    def expired_leases(self, now: float) -> list[Task]:
        return self._tasks("expired_leases", now=now)

    def delayed_count(self, now: float) -> int:
        return int(self._one("delayed_count", project_id=self.project_id, now=now))

    def next_run_after(self, now: float) -> float | None:
        moment = self._one("next_run_after", project_id=self.project_id, now=now)
        return None if moment is None else float(moment)

    def running_tasks(self) -> list[Task]:
        return self._tasks("running_tasks")

    def held_and_expired(self, agent_name: str, now: float) -> tuple[Task | None, list[Task]]:
        held, expired = None, []
        for held_by_agent, raw in self._run("held_and_expired", project_id=self.project_id,
                                            agent_name=agent_name, now=now).fetchall():
            if held_by_agent:
                held = decode_task(raw)
            else:
                expired.append(decode_task(raw))
        return held, sorted(expired, key=lambda task: task.seq)

    def waiting_dependents(self, task_ids: Collection[str], batch_ids: Collection[str]
                           ) -> list[Task]:
        ids = self._all("dependent_ids", project_id=self.project_id,
                        task_ids=list(task_ids), batch_ids=list(batch_ids))
        return self._tasks("lock_waiting", ids=ids) if ids else []

    def guard_batch(self, batch_id: str, creating: bool) -> None:
        self._run("guard_batch" if creating else "guard_batch_shared",
                  project_id=self.project_id, batch_id=batch_id)

    def serialize_batch_release(self, batch_id: str) -> None:
        self._run("serialize_batch_release", project_id=self.project_id, batch_id=batch_id)

    def dependents(self, task_id: str | None, batch_id: str | None, limit: int) -> list[str]:
        return [str(found) for found in self._all("dependents", project_id=self.project_id,
                                                   task_id=task_id, batch_id=batch_id,
                                                   limit=limit)]

    def find_duplicates(self, duplicate_keys: Collection[str]) -> dict[str, Task]:
        found = self._tasks("find_duplicates", keys=list(duplicate_keys))
        return {task.duplicate_key: task for task in found if task.duplicate_key}

    def list_tasks(self, task_filter: TaskFilter, limit: int, offset: int,
                   order: TaskOrder = OLDEST_FIRST) -> tuple[list[Task], int]:
        filters = {"status": task_filter.status.value if task_filter.status else None,
                   "assigned_to": task_filter.assigned_to, "batch_id": task_filter.batch_id,
                   "type_id": task_filter.type_id, "batch_contains": task_filter.batch_contains,
                   "agent_contains": task_filter.agent_contains, "text": task_filter.text}
        query, sort = (("list_tasks", {}) if order == OLDEST_FIRST else
                       ("list_tasks_sorted", {"sort": order.sort.value,
                                              "descending": order.descending}))
        tasks = self._tasks(query, **filters, **sort, limit=limit, offset=offset)
        if task_filter == TaskFilter(status=task_filter.status):
            # No filter but the status: the trigger-kept counts answer without counting
            # rows (a count(*) over a million tasks took over a second).
            counts = self.status_counts()
            total = counts[task_filter.status] if task_filter.status else sum(counts.values())
            return tasks, total
        return tasks, int(self._one("count_tasks", project_id=self.project_id, **filters))

    def status_counts(self, batch_id: str | None = None) -> dict[TaskStatus, int]:
        counts = {status: 0 for status in TaskStatus}
        rows = (self._run("status_counts", project_id=self.project_id) if batch_id is None
                else self._run("batch_counts", project_id=self.project_id, batch_id=batch_id))
        for status, count in rows.fetchall():
            counts[TaskStatus(status)] = int(count)
        return counts

    def outcome_times(self, since: float) -> tuple[list[float], list[float]]:
        return ([float(t) for t in self._all("completion_times", project_id=self.project_id,
                                             since=since)],
                [float(t) for t in self._all("failure_times", project_id=self.project_id,
                                             since=since)])

    def batch_ids(self) -> list[str]:
        return [str(batch_id) for batch_id in self._all("batch_ids", project_id=self.project_id)]

    def recent_activity(self, since: float) -> RecentActivity:
        row = self._run("completed_since", project_id=self.project_id,
                        since=since).fetchone()
        assert row is not None
        failed = self._one("failed_since", project_id=self.project_id, since=since)
        return RecentActivity(int(row[0]), int(failed), float(row[1]))
