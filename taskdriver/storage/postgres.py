"""The PostgreSQL backend: several app hosts share one database.

A thin connector in the manner of procrastinate: a psycopg connection pool per process, SQL
as named queries in `sql/queries.sql`, the schema in numbered files under `sql/migrations/`
(applied by `migrations.py`), and every driver error wrapped in `StorageError` here, so
nothing above imports psycopg.

Atomic sections are transactions. A project writer first locks the project's row
(`SELECT … FOR UPDATE`), a global writer takes an advisory lock: writers of one scope queue
up exactly as they do on the file backend's file locks, on any number of hosts. Readers take
no lock and see every transaction committed before they began (READ COMMITTED).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import NotFound, StorageError
from ..models import (
    OLDEST_FIRST,
    IdempotencyRecord,
    Project,
    RecentActivity,
    Session,
    Task,
    TaskFilter,
    TaskOrder,
    TaskStatus,
    TaskType,
)
from .base import ChangeWatch, GlobalTx, ProjectTx, Storage
from .codec import decode_project, decode_session, decode_task, decode_task_type
from .migrations import migrate

POOL_MAX_SIZE = 8  # per process; a connection is held only during a transaction
LISTENER_START_SECONDS = 5.0


def _load_queries() -> dict[str, str]:
    """Split `queries.sql` into its named queries."""
    text = resources.files(f"{__package__}.sql").joinpath("queries.sql").read_text()
    queries: dict[str, str] = {}
    for chunk in text.split("-- name: ")[1:]:
        name, _, body = chunk.partition("\n")
        queries[name.strip()] = "\n".join(
            line for line in body.splitlines() if not line.startswith("--")).strip()
    return queries


QUERIES = _load_queries()


def _json(record: Any) -> Jsonb:
    return Jsonb(record, dumps=lambda value: orjson.dumps(value).decode())


class _Section:
    """One transaction on one connection, with the named queries at hand.

    `scope` is where its idempotency keys live: '' globally, else the project's id.
    """

    def __init__(self, connection: psycopg.Connection[Any], write: bool,
                 project_id: str | None = None) -> None:
        self.connection = connection
        self.write = write
        self._idempotency_scope = project_id or ""
        self._idempotency_owner = project_id

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        raw = self._one("get_idempotency", scope=self._idempotency_scope, key=key)
        return None if raw is None else IdempotencyRecord(**raw)

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        self._change("put_idempotency", scope=self._idempotency_scope, key=record.id,
                     project_id=self._idempotency_owner, created_at=record.created_at,
                     data=_json(record))

    def purge_idempotency(self, before: float) -> int:
        if not self.write:
            raise RuntimeError("a read-only section cannot change records")
        return self._run("purge_idempotency", scope=self._idempotency_scope,
                         before=before).rowcount

    def _run(self, query: str, /, **params: Any) -> psycopg.Cursor[Any]:
        return self.connection.execute(QUERIES[query], params)

    def _change(self, query: str, /, **params: Any) -> None:
        if not self.write:
            raise RuntimeError("a read-only section cannot change records")
        self._run(query, **params)

    def _one(self, query: str, /, **params: Any) -> Any:
        row = self._run(query, **params).fetchone()
        return None if row is None else row[0]

    def _all(self, query: str, /, **params: Any) -> list[Any]:
        return [row[0] for row in self._run(query, **params).fetchall()]


class PostgresGlobalTx(_Section, GlobalTx):
    def get_project(self, project_id: str) -> Project | None:
        raw = self._one("get_project", id=project_id)
        return None if raw is None else decode_project(raw)

    def project_by_name(self, name: str) -> Project | None:
        raw = self._one("project_by_name", name=name)
        return None if raw is None else decode_project(raw)

    def list_projects(self) -> list[Project]:
        return [decode_project(raw) for raw in self._all("list_projects")]

    def put_project(self, project: Project) -> None:
        self._change("put_project", id=project.id, name=project.name, data=_json(project))

    def delete_project(self, project_id: str) -> None:
        self._change("delete_project", id=project_id)

    def session_by_token_hash(self, token_hash: str) -> Session | None:
        raw = self._one("session_by_token_hash", token_hash=token_hash)
        return None if raw is None else decode_session(raw)

    def put_session(self, session: Session) -> None:
        self._change("put_session", id=session.id, token_hash=session.token_hash,
                     project_id=session.project_id, expires_at=session.expires_at,
                     data=_json(session))

    def delete_session(self, session_id: str) -> None:
        self._change("delete_session", id=session_id)

    def sessions(self) -> list[Session]:
        return [decode_session(raw) for raw in self._all("sessions")]

    def has_admin_token(self, token_hash: str) -> bool:
        return self._one("has_admin_token", token_hash=token_hash) is not None

    def add_admin_token(self, token_hash: str, created_at: float) -> None:
        self._change("add_admin_token", token_hash=token_hash, created_at=created_at)

    def admin_token_count(self) -> int:
        return int(self._one("admin_token_count"))


class PostgresProjectTx(_Section, ProjectTx):
    def __init__(self, connection: psycopg.Connection[Any], write: bool,
                 project_id: str) -> None:
        super().__init__(connection, write, project_id)
        self.project_id = project_id
        self._last_seq: int | None = None
        self._notified = False

    def get_task_type(self, type_id: str) -> TaskType | None:
        raw = self._one("get_task_type", id=type_id, project_id=self.project_id)
        return None if raw is None else decode_task_type(raw)

    def task_type_by_name(self, name: str) -> TaskType | None:
        raw = self._one("task_type_by_name", project_id=self.project_id, name=name)
        return None if raw is None else decode_task_type(raw)

    def list_task_types(self) -> list[TaskType]:
        return [decode_task_type(raw)
                for raw in self._all("list_task_types", project_id=self.project_id)]

    def put_task_type(self, task_type: TaskType) -> None:
        self._change("put_task_type", id=task_type.id, project_id=self.project_id,
                     name=task_type.name, data=_json(task_type))

    def delete_task_type(self, type_id: str) -> None:
        self._change("delete_task_type", id=type_id, project_id=self.project_id)

    def task_type_in_use(self, type_id: str) -> bool:
        return self._one("task_type_in_use", type_id=type_id) is not None

    def get_task(self, task_id: str) -> Task | None:
        raw = self._one("get_task", id=task_id, project_id=self.project_id)
        return None if raw is None else decode_task(raw)

    def put_task(self, task: Task) -> None:
        self._change("put_task", id=task.id, project_id=self.project_id, seq=task.seq,
                     status=task.status.value, type_id=task.type_id, batch_id=task.batch_id,
                     assigned_to=task.assigned_to, duplicate_key=task.duplicate_key,
                     assigned_at=task.assigned_at, completed_at=task.completed_at,
                     updated_at=task.updated_at, priority=task.priority,
                     run_after=task.run_after, data=_json(task))
        if task.status is TaskStatus.QUEUED and not self._notified:
            self._run("notify_work", project_id=self.project_id)  # once per transaction
            self._notified = True

    def delete_task(self, task_id: str) -> None:
        self._change("delete_task", id=task_id, project_id=self.project_id)

    def next_seq(self) -> int:
        # Asked once per section: a writer holds the project's lock, so only it adds tasks.
        if self._last_seq is None:
            self._last_seq = int(self._one("max_seq", project_id=self.project_id))
        self._last_seq += 1
        return self._last_seq

    def next_due(self, now: float) -> Task | None:
        raw = self._one("next_due", project_id=self.project_id, now=now)
        return None if raw is None else decode_task(raw)

    def delayed_count(self, now: float) -> int:
        return int(self._one("delayed_count", project_id=self.project_id, now=now))

    def next_run_after(self, now: float) -> float | None:
        moment = self._one("next_run_after", project_id=self.project_id, now=now)
        return None if moment is None else float(moment)

    def running_tasks(self) -> list[Task]:
        return [decode_task(raw)
                for raw in self._all("running_tasks", project_id=self.project_id)]

    def task_held_by(self, agent_name: str) -> Task | None:
        raw = self._one("task_held_by", project_id=self.project_id, agent_name=agent_name)
        return None if raw is None else decode_task(raw)

    def find_duplicate(self, duplicate_key: str) -> Task | None:
        raw = self._one("find_duplicate", project_id=self.project_id,
                        duplicate_key=duplicate_key)
        return None if raw is None else decode_task(raw)

    def list_tasks(self, task_filter: TaskFilter, limit: int, offset: int,
                   order: TaskOrder = OLDEST_FIRST) -> tuple[list[Task], int]:
        filters = {"project_id": self.project_id,
                   "status": task_filter.status.value if task_filter.status else None,
                   "assigned_to": task_filter.assigned_to, "batch_id": task_filter.batch_id,
                   "type_id": task_filter.type_id, "batch_contains": task_filter.batch_contains,
                   "agent_contains": task_filter.agent_contains, "text": task_filter.text}
        query, sort = (("list_tasks", {}) if order == OLDEST_FIRST else
                       ("list_tasks_sorted", {"sort": order.sort.value,
                                              "descending": order.descending}))
        tasks = [decode_task(raw) for raw in self._all(query, **filters, **sort,
                                                       limit=limit, offset=offset)]
        if task_filter == TaskFilter(status=task_filter.status):
            # No filter but the status: the trigger-kept counts answer without counting
            # rows (a count(*) over a million tasks took over a second).
            counts = self.status_counts()
            total = counts[task_filter.status] if task_filter.status else sum(counts.values())
            return tasks, total
        return tasks, int(self._one("count_tasks", **filters))

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


LISTEN_CHANNEL = "taskdriver_work"
LISTENER_RETRY_SECONDS = 1.0


class _Listener:
    """One LISTEN connection per process, on its own thread, counting each project's
    notifications; waiters compare counts under one condition. No request holds it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.changed = threading.Condition()
        self.counts: dict[str, int] = defaultdict(int)
        self.epoch = 0  # bumped on every (re)connection: notifications may have been missed
        self.listening = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self, within: float) -> None:
        """Make sure a LISTEN is active (waiting up to `within` s for the first one)."""
        with self.changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="taskdriver-listen",
                                                daemon=True)
                self._thread.start()
        self.listening.wait(within)

    def marker(self, project_id: str) -> tuple[int, int]:
        with self.changed:
            return self.epoch, self.counts[project_id]

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {LISTEN_CHANNEL}")
                    with self.changed:
                        self.epoch += 1
                        self.changed.notify_all()
                    self.listening.set()
                    while not self._stopped.is_set():
                        for notify in connection.notifies(timeout=LISTENER_RETRY_SECONDS):
                            with self.changed:
                                self.counts[notify.payload] += 1
                                self.changed.notify_all()
            except psycopg.Error:
                self.listening.clear()
                self._stopped.wait(LISTENER_RETRY_SECONDS)

    def stop(self) -> None:
        self._stopped.set()


class PostgresWatch(ChangeWatch):
    """Waits for the listener's count of this project's notifications to move."""

    def __init__(self, listener: _Listener, project_id: str) -> None:
        self.listener = listener
        self.project_id = project_id
        self.seen = listener.marker(project_id)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        listener = self.listener
        with listener.changed:
            while True:
                current = (listener.epoch, listener.counts[self.project_id])
                if current != self.seen:
                    self.seen = current
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Without a live LISTEN, look again each second rather than trust silence.
                step = remaining if listener.listening.is_set() else min(
                    remaining, LISTENER_RETRY_SECONDS)
                if not listener.changed.wait(step) and not listener.listening.is_set():
                    return True


class PostgresStorage(Storage):
    """Storage in a PostgreSQL database (the schema is created on first use)."""

    provider = "postgresql"

    def __init__(self, url: str, fsync: bool = True) -> None:
        """Connect; with `fsync` false, commits stop waiting for the WAL to reach disk."""
        try:
            self._pool = ConnectionPool(url, min_size=1, max_size=POOL_MAX_SIZE, open=True,
                                        kwargs={"autocommit": False},
                                        configure=None if fsync else _relax_commits)
            self._pool.wait(timeout=10)
            self._create_schema()
            self._listener = _Listener(url)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageError(f"cannot use the PostgreSQL database: {exc}") from exc

    def _create_schema(self) -> None:
        with self._pool.connection() as connection:
            connection.autocommit = True
            try:
                migrate(connection)
            finally:
                connection.autocommit = False

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as connection, connection.transaction():
                yield connection
        except psycopg.Error as exc:
            raise StorageError(f"database error: {exc.__class__.__name__}") from exc

    @contextmanager
    def global_tx(self, write: bool = True) -> Iterator[GlobalTx]:
        with self._transaction() as connection:
            if write:
                connection.execute(QUERIES["lock_global"])
            yield PostgresGlobalTx(connection, write)

    @contextmanager
    def project_tx(self, project_id: str, write: bool = True) -> Iterator[ProjectTx]:
        with self._transaction() as connection:
            check = "lock_project" if write else "project_exists"
            if connection.execute(QUERIES[check], {"id": project_id}).fetchone() is None:
                raise NotFound("Project not found")
            yield PostgresProjectTx(connection, write, project_id)

    def watch(self, project_id: str) -> ChangeWatch:
        self._listener.start(within=LISTENER_START_SECONDS)
        return PostgresWatch(self._listener, project_id)

    def project_of_task(self, task_id: str) -> str | None:
        with self._transaction() as connection:
            row = connection.execute(QUERIES["project_of_task"], {"id": task_id}).fetchone()
        return None if row is None else str(row[0])

    def project_of_task_type(self, type_id: str) -> str | None:
        with self._transaction() as connection:
            row = connection.execute(QUERIES["project_of_task_type"],
                                     {"id": type_id}).fetchone()
        return None if row is None else str(row[0])

    def check_writable(self) -> None:
        with self._transaction() as connection:
            connection.execute(QUERIES["touch_health"])

    def close(self) -> None:
        self._listener.stop()
        self._pool.close()


def _relax_commits(connection: psycopg.Connection[Any]) -> None:
    """TASKDRIVER_FSYNC=false on PostgreSQL: a crash may lose the last commits, never tear."""
    connection.execute("SET synchronous_commit TO off")
    connection.commit()
