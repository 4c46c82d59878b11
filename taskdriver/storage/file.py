"""The file backend: a journaled store for global records and one per project.

    <data dir>/global/             projects, sessions, minted admin token hashes
    <data dir>/projects/<id>/      one project's task types and tasks
    <data dir>/locks/<name>.lock   the lock file (flock) of each store (outside the store
                                   directories, so deleting a project never races its lock)

See `journal.py` for the snapshot + journal store and why a write stays O(1)
(`journal_format.py` for the files, `group_commit.py` for the fsyncs).
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from ..answers import OLDEST_FIRST, RecentActivity, TaskFilter, TaskOrder, TypeLoad
from ..errors import NotFound, StorageError
from ..models import Project, Task, TaskStatus, TaskType, owner_prefix
from .archive_files import ArchiveFiles, archive_files
from .base import ChangeWatch, GlobalTx, ProjectTx, Storage
from .file_archive import FileArchive
from .file_global import ChangeLog, FileGlobalTx
from .file_watch import FileWatch
from .journal import JournaledStore
from .journal_format import SNAPSHOT_NAME
from .listing import matching
from .packed import PackedTask
from .state import (
    TASK,
    TASK_TYPE,
    GlobalState,
    ProjectState,
)


class FileProjectTx(ChangeLog, FileArchive, ProjectTx):
    state: ProjectState

    def __init__(self, project_id: str, state: ProjectState, write: bool,
                 archive: ArchiveFiles) -> None:
        super().__init__(state, write)
        self.project_id = project_id
        self.archive = archive

    def get_task_type(self, type_id: str) -> TaskType | None:
        return self.state.task_types.get(type_id)

    def task_type_by_name(self, name: str) -> TaskType | None:
        return next((t for t in self.state.task_types.values() if t.name == name), None)

    def list_task_types(self) -> list[TaskType]:
        return list(self.state.task_types.values())

    def put_task_type(self, task_type: TaskType) -> None:
        self._put(TASK_TYPE, task_type.id, task_type)

    def delete_task_type(self, type_id: str) -> None:
        self._put(TASK_TYPE, type_id, None)

    def task_type_in_use(self, type_id: str) -> bool:
        return self.state.active_by_type.get(type_id, 0) > 0

    def _whole(self, packed: PackedTask) -> Task:
        return packed.unpack(self.project_id)

    def get_task(self, task_id: str) -> Task | None:
        packed = self.state.tasks.get(task_id)
        return None if packed is None else self._whole(packed)

    def put_task(self, task: Task) -> None:
        self._put(TASK, task.id, task)

    def delete_task(self, task_id: str) -> None:
        self._put(TASK, task_id, None)

    def add_tasks(self, tasks: Sequence[Task], unique_keys: Collection[str]) -> None:
        for task in tasks:  # writers never overlap: the caller's look still holds
            self.put_task(task)

    def next_seqs(self, count: int) -> list[int]:
        return list(range(self.state.max_seq + 1, self.state.max_seq + 1 + count))

    def next_due(self, now: float, excluded_types: Collection[str] = ()) -> Task | None:
        packed = self.state.queue.first_due(now, self.state.tasks, excluded_types)
        return None if packed is None else self._whole(packed)

    def type_load(self, type_id: str, since: float | None, lock: bool = False) -> TypeLoad:
        # Writers never overlap here: what an exclusive section reads stays true.
        tally = self.state.by_type
        return TypeLoad(tally.running[type_id],
                        0 if since is None else tally.starts_since(type_id, since))

    def record_lease_start(self, type_id: str, at: float, forget_before: float) -> None:
        """Nothing to write: every process's state notes it as it replays (`type_index`)."""

    def due_count(self, type_id: str, now: float) -> int:
        tasks = self.state.tasks
        return (self.state.by_type.queued[type_id]
                - self.state.queue.waiting_of(type_id, now, tasks))

    # Writers of a project never overlap here: what a section reads, it holds.
    lock_task = get_task
    claim_next = next_due

    def expired_leases(self, now: float) -> list[Task]:
        return [task for task in self.running_tasks()
                if task.lease_expires_at is not None and task.lease_expires_at <= now]

    def delayed_count(self, now: float) -> int:
        return self.state.queue.waiting_count(now, self.state.tasks)

    def next_run_after(self, now: float) -> float | None:
        return self.state.queue.next_run_after(now, self.state.tasks)

    def running_tasks(self) -> list[Task]:
        return [self._whole(self.state.tasks[task_id]) for task_id in self.state.running]

    def held_and_expired(self, agent_name: str, now: float) -> tuple[Task | None, list[Task]]:
        task_id = self.state.running_by_agent.get(agent_name)
        held = None if task_id is None else self._whole(self.state.tasks[task_id])
        return held, self.expired_leases(now)

    def waiting_dependents(self, task_ids: Collection[str], batch_ids: Collection[str]
                           ) -> list[Task]:
        found = self.state.dependencies.dependents(list(task_ids), list(batch_ids))
        tasks = self.state.tasks
        return [self._whole(tasks[task_id]) for task_id in sorted(found)
                if tasks[task_id].status is TaskStatus.WAITING]

    def dependents(self, task_id: str | None, batch_id: str | None, limit: int) -> list[str]:
        found = self.state.dependencies.first_dependents(task_id, batch_id, limit)
        return sorted(found, key=lambda key: self.state.tasks[key].seq)[:limit]

    def find_duplicates(self, duplicate_keys: Collection[str]) -> dict[str, Task]:
        found = {key: self.state.duplicates.get(key) for key in duplicate_keys}
        return {key: self._whole(self.state.tasks[holders[0][1]])
                for key, holders in found.items() if holders}

    def list_tasks(self, task_filter: TaskFilter, limit: int, offset: int,
                   order: TaskOrder = OLDEST_FIRST) -> tuple[list[Task], int]:
        tasks = self.state.tasks
        if task_filter == TaskFilter() and order == OLDEST_FIRST:
            end = min(offset + limit, len(tasks))  # islice takes no stop past sys.maxsize
            page = itertools.islice(tasks.values(), offset, end)
            return [self._whole(packed) for packed in page], len(tasks)
        matches = matching(self.state, task_filter, order, self._whole)
        return [self._whole(packed) for packed in matches[offset:offset + limit]], len(matches)

    def status_counts(self, batch_id: str | None = None) -> dict[TaskStatus, int]:
        if batch_id is None:
            return dict(self.state.counts)
        return self.state.dependencies.counts_of(batch_id)

    def batch_ids(self) -> list[str]:
        return list(self.state.batches)

    def recent_activity(self, since: float) -> RecentActivity:
        completed, duration_total = self.state.completions.since(since)
        failed, _ = self.state.failures.since(since)
        return RecentActivity(completed, failed, duration_total)

    def outcome_times(self, since: float) -> tuple[list[float], list[float]]:
        return (self.state.completions.times_since(since),
                self.state.failures.times_since(since))


class FileStorage(Storage):
    """Embedded storage in a data directory, safe across threads and processes."""

    provider = "file"

    def __init__(self, data_dir: Path, fsync: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self._fsync = fsync
        self._locks_dir = self.data_dir / "locks"
        self._projects_dir = self.data_dir / "projects"
        try:
            self._locks_dir.mkdir(parents=True, exist_ok=True)
            self._projects_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create data directory: {exc.strerror}") from exc
        self._global = JournaledStore(self.data_dir / "global", self._locks_dir / "global.lock",
                                      GlobalState, fsync)
        if not (self.data_dir / "global" / SNAPSHOT_NAME).exists():
            self._global.initialise([], only_if_missing=True)
        self._stores: dict[str, JournaledStore] = {}
        self._stores_lock = threading.Lock()

    def project_store(self, project_id: str) -> JournaledStore:
        """This process's handle on one project's store (made on first use).

        The id names a directory, so anything but a UUID is refused here too, whatever the
        caller checked: no id can reach outside the data directory.
        """
        store = self._stores.get(project_id)  # known, so a valid id: no need to check again
        if store is not None:
            return store
        if not _is_uuid(project_id):
            raise NotFound("Project not found")
        with self._stores_lock:
            store = self._stores.get(project_id)
            if store is None:
                store = JournaledStore(self._projects_dir / project_id,
                                       self._locks_dir / f"{project_id}.lock",
                                       partial(ProjectState, project_id), self._fsync)
                self._stores[project_id] = store
            return store

    def drop_project_store(self, project_id: str) -> None:
        """Delete a project's files (after its deletion was committed globally)."""
        store = self.project_store(project_id)
        archive_files(store.directory, self._fsync).close()
        store.destroy()
        with self._stores_lock:
            self._stores.pop(project_id, None)

    @contextmanager
    def global_tx(self, write: bool = True) -> Iterator[GlobalTx]:
        with self._global.section(write) as state:
            tx = FileGlobalTx(state, self, write)  # type: ignore[arg-type]
            yield from _commit_on_exit(self._global, tx)
        for hook in tx.after_commit:
            hook()

    @contextmanager
    def project_tx(self, project_id: str, write: bool = True, shared: bool = False
                   ) -> Iterator[ProjectTx]:
        store = self.project_store(project_id)  # a shared writer runs exclusively here
        with store.section(write) as state:
            tx = FileProjectTx(project_id, state, write,  # type: ignore[arg-type]
                               archive_files(store.directory, self._fsync))
            yield from _commit_on_exit(store, tx)
        for hook in tx.after_commit:  # a deleted archive segment's files, once durable
            hook()

    def watch(self, project_id: str) -> ChangeWatch:
        return FileWatch(self.project_store(project_id), self._global)

    def _find_owner(self, record_id: str, holds: Callable[[ProjectState, str], bool]
                    ) -> Project | None:
        """The project holding a task or task type, loading as few projects as possible.

        A record's id starts like its project's (`models.new_id_within`), so only projects
        with that prefix (almost always exactly one) are looked into, plus any project made
        before ids were so, whose records may carry any id.
        """
        with self._global.reading() as state:
            projects = list(state.projects.values())  # type: ignore[attr-defined]
        prefix = owner_prefix(record_id)
        candidates = [p for p in projects if p.id.startswith(prefix)] + [
            p for p in projects if not p.owner_prefixed_ids and not p.id.startswith(prefix)]
        # First what this process already holds (no I/O), then each project brought current.
        for look in (lambda store: store.holds(lambda st: holds(st, record_id)),
                     lambda store: self._current_holds(store, holds, record_id)):
            for project in candidates:
                if look(self.project_store(project.id)):
                    return project
        return None

    @staticmethod
    def _current_holds(store: JournaledStore, holds: Callable[[ProjectState, str], bool],
                       record_id: str) -> bool:
        try:
            with store.reading() as state:
                return holds(state, record_id)  # type: ignore[arg-type]
        except NotFound:
            return False  # deleted while we looked

    def project_of_task(self, task_id: str) -> Project | None:
        return self._find_owner(task_id, lambda state, key: key in state.tasks)

    def project_of_task_type(self, type_id: str) -> Project | None:
        return self._find_owner(type_id, lambda state, key: key in state.task_types)

    def close(self) -> None:
        self._global.close()
        with self._stores_lock:
            for store in self._stores.values():
                archive_files(store.directory, self._fsync).close()
                store.close()

    def check_writable(self) -> None:
        probe = self.data_dir / f".health-{uuid.uuid4().hex}"
        try:
            with open(probe, "wb") as handle:
                handle.write(b"ok")
                handle.flush()
                os.fsync(handle.fileno())
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"data directory is not writable: {exc.strerror}") from exc


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _commit_on_exit(store: JournaledStore, tx: ChangeLog) -> Iterator[Any]:
    """Yield the transaction; append its changes if the block succeeded, else forget them."""
    try:
        yield tx
        if tx.changes:
            store.append(tx.changes)
    except BaseException:
        if tx.changes:
            store.invalidate()  # the in-memory state holds changes that were not committed
        raise

