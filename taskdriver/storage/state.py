"""In-memory state of the file backend: records plus the indexes that keep queries cheap.

`apply()` is the only way a record enters or leaves a state, both for live commits and for
journal replay, so the indexes can never disagree with the records. With 100,000 tasks in a
project, claiming, counting and duplicate checks stay O(log n) or better.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ..models import (
    IdempotencyRecord,
    Project,
    Session,
    Task,
    TaskStatus,
    TaskType,
)
from .archive_registry import ARCHIVE, ArchiveRegistry
from .codec import decode_project, decode_session, decode_task_type
from .dependency_index import DependencyIndex
from .packed import PackedTask, Packer
from .type_index import TypedQueues, TypeTally

TASK = "task"
TASK_TYPE = "task_type"
PROJECT = "project"
SESSION = "session"
ADMIN_TOKEN = "admin_token"
IDEMPOTENCY = "idempotency"


def apply_idempotency(records: dict[str, IdempotencyRecord], key: str,
                      record: IdempotencyRecord | None) -> None:
    """Put or delete one idempotency record (both kinds of state keep them alike)."""
    if record is None:
        records.pop(key, None)
    else:
        records[key] = record


ACTIVE = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING)  # a type in use
HISTORY_SECONDS = 24 * 3600.0  # how far back stats and charts may look


class EventWindow:
    """Timestamped values appended roughly in time order; sums over a recent window.

    Keeps a running total so a window's sum is one subtraction, and forgets what is more
    than HISTORY_SECONDS older than the windows asked about (stats and charts only ever
    look back from now, and never further than that). Held in arrays of doubles: 16 bytes an
    event and no object per event, so a day's completions (which outlive their tasks once
    those are archived) cost a worker little and fragment nothing.
    """

    __slots__ = ("_times", "_totals", "_sorted")

    def __init__(self) -> None:
        self._times = array("d")
        self._totals = array("d")  # _totals[i] = sum of values up to and including i
        self._sorted = True

    def add(self, at: float, value: float = 0.0) -> None:
        if self._times and at < self._times[-1]:
            self._sorted = False
        self._times.append(at)
        self._totals.append((self._totals[-1] if self._totals else 0.0) + value)

    def _sort(self) -> None:
        values = [later - earlier for earlier, later in pairwise([0.0, *self._totals])]
        pairs = sorted(zip(self._times, values, strict=True))
        self._times, self._totals, running = array("d"), array("d"), 0.0
        for at, value in pairs:
            running += value
            self._times.append(at)
            self._totals.append(running)
        self._sorted = True

    def since(self, start: float) -> tuple[int, float]:
        """How many events happened at or after `start`, and the sum of their values."""
        self._forget_before(start - HISTORY_SECONDS)
        first = bisect_left(self._times, start)
        base = self._totals[first - 1] if first else 0.0
        return len(self._times) - first, (self._totals[-1] - base if self._totals else 0.0)

    def times_since(self, start: float) -> list[float]:
        """The moments of the events at or after `start`, in time order."""
        self._forget_before(start - HISTORY_SECONDS)
        return self._times[bisect_left(self._times, start):].tolist()

    def _forget_before(self, moment: float) -> None:
        if not self._sorted:
            self._sort()
        first = bisect_left(self._times, moment)
        if first:
            base = self._totals[first - 1]
            del self._times[:first]
            self._totals = array("d", (total - base for total in self._totals[first:]))


class ProjectState:
    """One project's task types and tasks with their indexes.

    Tasks are held packed (`packed.py`): a live transaction puts a `Task`, which is packed
    here; a load or replay packs each task straight from its stored JSON (`decode`).
    """

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.task_types: dict[str, TaskType] = {}
        self.tasks: dict[str, PackedTask] = {}  # insertion order is creation order
        self.packer = Packer()
        self.queue = TypedQueues()
        self.by_type = TypeTally()
        self.counts: dict[TaskStatus, int] = {status: 0 for status in TaskStatus}
        self.running: dict[str, None] = {}  # ordered set of running task ids
        self.running_by_agent: dict[str, str] = {}
        # key -> (seq, id) of the tasks not failed, oldest first
        self.duplicates: dict[str, list[tuple[int, str]]] = {}
        self.batches: dict[str, dict[str, None]] = defaultdict(dict)
        self.active_by_type: dict[str, int] = defaultdict(int)  # ACTIVE per type
        self.completions = EventWindow()  # value: seconds from assignment to completion
        self.failures = EventWindow()
        self.max_seq = 0
        self.idempotency: dict[str, IdempotencyRecord] = {}
        self.dependencies = DependencyIndex()
        self.archive = ArchiveRegistry()

    def decode(self, kind: str, raw: Any) -> Any:
        if kind == IDEMPOTENCY:
            return IdempotencyRecord(**raw)
        if kind == ARCHIVE:
            return self.archive.decode(raw)
        return self.packer.pack_stored(raw) if kind == TASK else decode_task_type(raw)

    def to_snapshot(self) -> dict[str, Iterable[Any]]:
        return {ARCHIVE: list(self.archive.segments.values()),
                TASK_TYPE: list(self.task_types.values()),
                TASK: (packed.stored(self.project_id) for packed in self.tasks.values()),
                IDEMPOTENCY: list(self.idempotency.values())}

    def record_count(self) -> int:
        return (len(self.archive.segments) + len(self.task_types) + len(self.tasks)
                + len(self.idempotency))

    def apply(self, kind: str, key: str, record: Any) -> None:
        if kind == IDEMPOTENCY:
            apply_idempotency(self.idempotency, key, record)
            return
        if kind == ARCHIVE:  # positions of archived tasks are never handed out again
            self.archive.apply(key, record)
            self.max_seq = max(self.max_seq, record.max_seq if record else 0)
            return
        if kind == TASK_TYPE:
            if record is None:
                self.task_types.pop(key, None)
            else:
                self.task_types[key] = record
            return
        # Packed first: a task that cannot be encoded leaves the state as it was.
        packed = self.packer.pack(record) if isinstance(record, Task) else record
        old = self.tasks.get(key)
        self.dependencies.change(old, packed)
        if old is not None:
            self._unindex(old)
        if packed is None:
            self.tasks.pop(key, None)
            if old is not None:
                self.queue.discard(old)
        else:
            self.tasks[key] = packed
            self._index(packed, old)

    def _unindex(self, task: PackedTask) -> None:
        self.counts[task.status] -= 1
        self.by_type.unindex(task)
        if task.status is TaskStatus.RUNNING:
            self.running.pop(task.id, None)
            if self.running_by_agent.get(task.assigned_to or "") == task.id:
                del self.running_by_agent[task.assigned_to or ""]
        if task.status in ACTIVE and task.type_id:
            self.active_by_type[task.type_id] -= 1
        if task.duplicate_key and task.status is not TaskStatus.FAILED:
            holders = self.duplicates[task.duplicate_key]
            holders.remove((task.seq, task.id))
            if not holders:
                del self.duplicates[task.duplicate_key]
        if task.batch_id is not None:
            members = self.batches[task.batch_id]
            members.pop(task.id, None)
            if not members:
                del self.batches[task.batch_id]

    def _index(self, task: PackedTask, old: PackedTask | None) -> None:
        status = task.status
        self.counts[status] += 1
        self.by_type.index(task, old, self.task_types.get(task.type_id or ""))
        self.max_seq = max(self.max_seq, task.seq)
        if status is TaskStatus.QUEUED:
            if (old is None or old.status is not status or old.priority != task.priority
                    or old.run_after != task.run_after):
                self.queue.add(task)
        else:
            self.queue.discard(task)
        if status is TaskStatus.RUNNING:
            self.running[task.id] = None
            self.running_by_agent[task.assigned_to or ""] = task.id
        if status in ACTIVE and task.type_id:
            self.active_by_type[task.type_id] += 1
        if task.duplicate_key and status is not TaskStatus.FAILED:
            insort(self.duplicates.setdefault(task.duplicate_key, []), (task.seq, task.id))
        if task.batch_id is not None:
            self.batches[task.batch_id][task.id] = None
        became = old is None or old.status is not status
        if became and status is TaskStatus.COMPLETED and task.completed_at is not None:
            self.completions.add(task.completed_at,
                                 task.completed_at - (task.assigned_at or task.completed_at))
        elif became and status is TaskStatus.FAILED:
            self.failures.add(task.updated_at)


class GlobalState:
    """Projects, agent sessions and minted admin token hashes."""

    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.project_names: dict[str, str] = {}
        self.sessions: dict[str, Session] = {}
        self.session_by_hash: dict[str, str] = {}
        self.admin_tokens: dict[str, float] = {}  # token hash -> created at
        self.idempotency: dict[str, IdempotencyRecord] = {}

    def decode(self, kind: str, raw: Any) -> Any:
        if kind == PROJECT:
            return decode_project(raw)
        if kind == SESSION:
            return decode_session(raw)
        if kind == IDEMPOTENCY:
            return IdempotencyRecord(**raw)
        return AdminTokenRecord(**raw)

    def to_snapshot(self) -> dict[str, Iterable[Any]]:
        return {
            PROJECT: list(self.projects.values()),
            SESSION: list(self.sessions.values()),
            ADMIN_TOKEN: [AdminTokenRecord(h, t) for h, t in self.admin_tokens.items()],
            IDEMPOTENCY: list(self.idempotency.values()),
        }

    def record_count(self) -> int:
        return (len(self.projects) + len(self.sessions) + len(self.admin_tokens)
                + len(self.idempotency))

    def apply(self, kind: str, key: str, record: Any) -> None:
        if kind == PROJECT:
            old = self.projects.pop(key, None) if record is None else self.projects.get(key)
            if old is not None:
                self.project_names.pop(old.name, None)
            if record is not None:
                self.projects[key] = record
                self.project_names[record.name] = key
        elif kind == SESSION:
            old_session = self.sessions.pop(key, None)
            if old_session is not None:
                self.session_by_hash.pop(old_session.token_hash, None)
            if record is not None:
                self.sessions[key] = record
                self.session_by_hash[record.token_hash] = key
        elif kind == IDEMPOTENCY:
            apply_idempotency(self.idempotency, key, record)
        elif record is None:
            self.admin_tokens.pop(key, None)
        else:
            self.admin_tokens[key] = record.created_at


@dataclass(frozen=True, slots=True)
class AdminTokenRecord:
    """A minted operator token as stored: its hash (the key) and when it was minted."""

    id: str
    created_at: float
