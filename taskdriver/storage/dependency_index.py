"""The file backend's index of dependencies: from a task and from a batch to the tasks that
depend on them, and each batch's counts by status.

Finishing a task looks up only its own dependents here (and its batch's, once the batch's
counts say it finished), so the cost of a completion follows the number of its dependents,
never the number of tasks in the project. Fed by `ProjectState.apply` with every record
that enters or leaves, so it never disagrees with the records (on a live commit and on a
journal replay alike).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import islice

from ..models import TaskStatus
from .packed import PackedTask


class DependencyIndex:
    """Who depends on what, and how many of each batch's tasks are in each status."""

    __slots__ = ("by_task", "by_batch", "batch_counts")

    def __init__(self) -> None:
        # dependency id (or batch id) -> ids of the tasks depending on it, oldest first
        self.by_task: dict[str, dict[str, None]] = defaultdict(dict)
        self.by_batch: dict[str, dict[str, None]] = defaultdict(dict)
        self.batch_counts: dict[str, dict[TaskStatus, int]] = {}

    def change(self, old: PackedTask | None, new: PackedTask | None) -> None:
        """Account for one task replaced (`old` -> `new`; None: created or deleted)."""
        if old is not None and old.batch_id is not None:
            counts = self.batch_counts[old.batch_id]
            counts[old.status] -= 1
            if not any(counts.values()):
                del self.batch_counts[old.batch_id]
        if new is not None and new.batch_id is not None:
            counts = self.batch_counts.get(new.batch_id) or self.batch_counts.setdefault(
                new.batch_id, {status: 0 for status in TaskStatus})
            counts[new.status] += 1
        # What a task depends on is fixed at creation: only creation and deletion matter.
        if old is None and new is not None:
            self._link(new, add=True)
        elif new is None and old is not None:
            self._link(old, add=False)

    def _link(self, task: PackedTask, add: bool) -> None:
        targets = [(self.by_task, dep) for dep in task.depends_on]
        if task.depends_on_batch is not None:
            targets.append((self.by_batch, task.depends_on_batch))
        for index, key in targets:
            if add:
                index[key][task.id] = None
            else:
                index[key].pop(task.id, None)
                if not index[key]:
                    del index[key]

    def dependents(self, task_ids: list[str], batch_ids: list[str]) -> list[str]:
        """Ids of the tasks depending on any of these tasks or batches (each once)."""
        found: dict[str, None] = {}
        for index, keys in ((self.by_task, task_ids), (self.by_batch, batch_ids)):
            for key in keys:
                if key in index:
                    found.update(index[key])
        return list(found)

    def first_dependents(self, task_id: str | None, batch_id: str | None, limit: int
                         ) -> list[str]:
        """Up to `limit` of the oldest tasks depending on this task and as many depending
        on this batch: each index holds its dependents in creation order (they are indexed
        as they are created, live or replayed), so this costs `limit`, however many."""
        found: dict[str, None] = {}
        for index, key in ((self.by_task, task_id), (self.by_batch, batch_id)):
            if key is not None and key in index:
                found.update((task, None) for task in islice(index[key], limit))
        return list(found)

    def counts_of(self, batch_id: str) -> dict[TaskStatus, int]:
        """A batch's tasks by status (all zero for a batch no task carries)."""
        return dict(self.batch_counts.get(batch_id) or {status: 0 for status in TaskStatus})
