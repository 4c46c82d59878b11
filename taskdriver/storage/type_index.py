"""The file backend's indexes by task type: one queue per type, and what the fleet controls
read (running tasks per type, recent lease starts of rate-limited types).

One `TaskQueue` per type (untyped tasks under None) lets a claim pass over a paused or full
type in one step: it compares the heads of the eligible types' queues instead of walking
past the excluded type's tasks. Like the rest of `state.py`, these are rebuilt from the
journal by `ProjectState.apply`, so every worker of the host sees the same counts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Collection

from ..models import MAX_RATE_SECONDS, TaskStatus, TaskType
from .packed import PackedTask
from .state_queue import TaskQueue


class TypedQueues:
    """Queued tasks, one `TaskQueue` per task type."""

    __slots__ = ("by_type",)

    def __init__(self) -> None:
        self.by_type: dict[str | None, TaskQueue] = {}

    def add(self, task: PackedTask) -> None:
        queue = self.by_type.get(task.type_id)
        if queue is None:
            queue = self.by_type[task.type_id] = TaskQueue()
        queue.add(task)

    def discard(self, task: PackedTask) -> None:
        queue = self.by_type.get(task.type_id)
        if queue is not None:
            queue.discard(task.id)

    def first_due(self, now: float, tasks: dict[str, PackedTask],
                  excluded_types: Collection[str] = ()) -> PackedTask | None:
        """The next task to hand out at `now` among the types not excluded: the highest
        priority, then the lowest seq, of the eligible queues' heads."""
        best: PackedTask | None = None
        for type_id, queue in self.by_type.items():
            if type_id is not None and type_id in excluded_types:
                continue
            head = queue.first_due(now, tasks)
            if head is not None and (best is None or (-head.priority, head.seq)
                                     < (-best.priority, best.seq)):
                best = head
        return best

    def waiting_count(self, now: float, tasks: dict[str, PackedTask]) -> int:
        """How many queued tasks are not due yet at `now`."""
        return sum(queue.waiting_count(now, tasks) for queue in self.by_type.values())

    def next_run_after(self, now: float, tasks: dict[str, PackedTask]) -> float | None:
        """When the soonest waiting task comes due."""
        moments = [queue.next_run_after(now, tasks) for queue in self.by_type.values()]
        return min((m for m in moments if m is not None), default=None)

    def waiting_of(self, type_id: str, now: float, tasks: dict[str, PackedTask]) -> int:
        """How many queued tasks of one type are not due yet at `now`."""
        queue = self.by_type.get(type_id)
        return 0 if queue is None else queue.waiting_count(now, tasks)


class TypeTally:
    """Running tasks per type, queued tasks per type, and when leases of rate-limited
    types began (a task becoming running), each kept as the tasks change."""

    __slots__ = ("running", "queued", "starts")

    def __init__(self) -> None:
        self.running: Counter[str] = Counter()
        self.queued: Counter[str] = Counter()
        self.starts: dict[str, list[float]] = {}  # per type, in time order

    def unindex(self, task: PackedTask) -> None:
        if task.type_id is None:
            return
        if task.status is TaskStatus.RUNNING:
            self.running[task.type_id] -= 1
        elif task.status is TaskStatus.QUEUED:
            self.queued[task.type_id] -= 1

    def index(self, task: PackedTask, old: PackedTask | None,
              task_type: TaskType | None) -> None:
        if task.type_id is None:
            return
        if task.status is TaskStatus.QUEUED:
            self.queued[task.type_id] += 1
        elif task.status is TaskStatus.RUNNING:
            self.running[task.type_id] += 1
            began = old is None or old.status is not TaskStatus.RUNNING
            if began and task_type is not None and task_type.rate_limit is not None:
                self._add_start(task.type_id, task.assigned_at or task.updated_at)

    def _add_start(self, type_id: str, at: float) -> None:
        """Remember a lease start, forgetting those older than any window can reach (only
        writers, which never overlap, change the list; readers only bisect it)."""
        starts = self.starts.setdefault(type_id, [])
        starts.append(at)
        if starts[0] < at - 2 * MAX_RATE_SECONDS:
            del starts[:bisect_left(starts, at - MAX_RATE_SECONDS)]

    def starts_since(self, type_id: str, since: float) -> int:
        """Lease starts of the type at or after `since`."""
        starts = self.starts.get(type_id, [])
        return len(starts) - bisect_left(starts, since)
