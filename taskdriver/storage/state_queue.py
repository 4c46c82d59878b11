"""The file backend's queue of one task type: due tasks by priority lane, delayed ones by
moment (moved out of `state.py`, which keeps one per type through `type_index.py`)."""

from __future__ import annotations

import heapq
from bisect import insort
from collections import deque

from ..models import TaskStatus
from .packed import PackedTask


class _Lane:
    """The due tasks of one priority, in seq order.

    New tasks arrive in seq order, so most wait in a FIFO of two parallel deques (seq, id):
    16 bytes a task, where a heap entry (a tuple) took 72. A task that comes back (a retry,
    an expired lease, a delay that ended, a changed priority) is older than the FIFO's tail,
    so it waits in a small heap beside it; the older of the two heads goes first.
    """

    __slots__ = ("seqs", "ids", "returned")

    def __init__(self) -> None:
        self.seqs: deque[int] = deque()
        self.ids: deque[str] = deque()
        self.returned: list[tuple[int, str]] = []

    def add(self, seq: int, task_id: str) -> None:
        if not self.seqs or seq > self.seqs[-1]:
            self.seqs.append(seq)
            self.ids.append(task_id)
        else:
            heapq.heappush(self.returned, (seq, task_id))

    def _returned_go_first(self) -> bool:
        return bool(self.returned) and (not self.seqs or self.returned[0][0] < self.seqs[0])

    def first(self) -> tuple[int, str] | None:
        """(seq, task id) of the oldest entry, if any."""
        if self._returned_go_first():
            return self.returned[0]
        return (self.seqs[0], self.ids[0]) if self.seqs else None

    def drop_first(self) -> None:
        if self._returned_go_first():
            heapq.heappop(self.returned)
        else:
            self.seqs.popleft()
            self.ids.popleft()


class TaskQueue:
    """Queued tasks in the order they are handed out, each step O(log n) at most.

    Due tasks wait in one lane per priority (`_Lane`), highest priority first, oldest
    first within it. Tasks with a future `run_after` wait in a heap by that moment and move
    over when it comes. Entries are never removed in place: one that no longer matches its
    task (leased, changed, deleted) is skipped when it reaches the front.
    """

    __slots__ = ("lanes", "priorities", "waiting_heap", "waiting")

    def __init__(self) -> None:
        self.lanes: dict[int, _Lane] = {}
        self.priorities: list[int] = []  # of the lanes, ascending: the last goes first
        self.waiting_heap: list[tuple[float, int, str]] = []
        self.waiting: dict[str, float] = {}  # task id -> run_after, until it comes

    def add(self, task: PackedTask) -> None:
        if task.run_after is None:
            self.waiting.pop(task.id, None)
            self._lane(task.priority).add(task.seq, task.id)
        else:
            self.waiting[task.id] = task.run_after
            heapq.heappush(self.waiting_heap, (task.run_after, task.seq, task.id))

    def _lane(self, priority: int) -> _Lane:
        lane = self.lanes.get(priority)
        if lane is None:
            lane = self.lanes[priority] = _Lane()
            insort(self.priorities, priority)
        return lane

    def discard(self, task_id: str) -> None:
        self.waiting.pop(task_id, None)

    def _promote(self, now: float, tasks: dict[str, PackedTask]) -> None:
        heap = self.waiting_heap
        while heap and heap[0][0] <= now:
            run_after, _, task_id = heapq.heappop(heap)
            if self.waiting.get(task_id) == run_after:
                del self.waiting[task_id]
                task = tasks[task_id]
                self._lane(task.priority).add(task.seq, task_id)

    def first_due(self, now: float, tasks: dict[str, PackedTask]) -> PackedTask | None:
        """The next task to hand out at `now`, if any."""
        self._promote(now, tasks)
        while self.priorities:
            priority = self.priorities[-1]
            lane = self.lanes[priority]
            while (entry := lane.first()) is not None:
                seq, task_id = entry
                task = tasks.get(task_id)
                if (task is not None and task.status is TaskStatus.QUEUED and task.seq == seq
                        and task.priority == priority and task_id not in self.waiting):
                    return task
                lane.drop_first()  # stale
            del self.lanes[priority]
            self.priorities.pop()
        return None

    def waiting_count(self, now: float, tasks: dict[str, PackedTask]) -> int:
        """How many queued tasks are not due yet at `now`."""
        self._promote(now, tasks)
        return len(self.waiting)

    def next_run_after(self, now: float, tasks: dict[str, PackedTask]) -> float | None:
        """When the soonest waiting task comes due."""
        self._promote(now, tasks)
        heap = self.waiting_heap
        while heap and self.waiting.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale
        return heap[0][0] if heap else None
