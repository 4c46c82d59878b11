"""Dependencies inside a section: check a new task's, start it where they say, release the
dependents of tasks that finished, and read what a task waits for.

The rules are `taskdriver.dependencies`; this module loads what they read and stores what
they decide, always inside the caller's section: the release of a finished task's
dependents (and the failure cascading from them) is in the same commit as the change that
finished it, on every backend. Only the finished tasks' own dependents are looked at (the
storage's index), and a batch's dependents only once its counts say it finished.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .. import dependencies
from ..dependencies import FINISHED, BatchSummary, TaskDetail
from ..errors import Conflict, FieldError
from ..inputs import TaskSpec
from ..models import MAX_DEPENDS_ON, Task, TaskStatus
from ..storage import ProjectTx

DEPENDENTS_SHOWN = 1000  # ids of the tasks waiting for one task, in its detail


class Lookups:
    """What the rules read, looked up once per round: tasks by id (None: not in the
    project) and batches' counts, with the tasks this section changed told to it.

    A section creating dependents (`creating`) holds what it reads against concurrent
    finishers: the tasks it depends on (locked) and the batches (`guard_batch`), so a
    finish either commits before it looks or sees the new dependent after it.
    """

    def __init__(self, tx: ProjectTx, creating: bool = False) -> None:
        self.tx = tx
        self.creating = creating
        self.mine: dict[str, Task] = {}  # what this section stored or is creating
        self.tasks: dict[str, Task | None] = {}
        self.batches: dict[str, dict[TaskStatus, int]] = {}

    def new_round(self) -> None:
        """Forget what other sections may have changed since (read it again)."""
        self.tasks = dict(self.mine)
        self.batches = {}

    def task(self, task_id: str) -> Task | None:
        if task_id not in self.tasks:
            self.tasks[task_id] = (self.tx.lock_task(task_id) if self.creating
                                   else self.tx.get_task(task_id))
        return self.tasks[task_id]

    def batch(self, batch_id: str) -> dict[TaskStatus, int]:
        if batch_id not in self.batches:
            if self.creating:
                self.tx.guard_batch(batch_id, creating=True)
            self.batches[batch_id] = self.tx.status_counts(batch_id)
        return self.batches[batch_id]

    def changed(self, old: Task | None, new: Task) -> None:
        """A task this section stored (or is creating): later reads see it."""
        self.tasks[new.id] = self.mine[new.id] = new
        for task, step in ((old, -1), (new, 1)):
            if task is not None and task.batch_id in self.batches:
                self.batches[task.batch_id][task.status] += step

    def added(self, task: Task) -> None:
        """A task this section is creating: later checks and outlooks count it in."""
        if task.batch_id is not None:
            self.batch(task.batch_id)
        self.changed(None, task)

    def outlook(self, task: Task) -> tuple[TaskStatus, str | None]:
        """What the task's dependencies say it should be now."""
        found: Mapping[str, Task | None] = {dep: self.task(dep) for dep in task.depends_on}
        batch = self.batch(task.depends_on_batch) if task.depends_on_batch else None
        return dependencies.outlook(task, found, batch)


def check_spec(lookups: Lookups, spec: TaskSpec) -> None:
    """Refuse (422) dependencies that are not tasks or a batch of this project (a task of
    another project is not found here, like one that never was)."""
    if len(spec.depends_on) > MAX_DEPENDS_ON:
        raise FieldError("dependsOn", f"At most {MAX_DEPENDS_ON} task ids",
                         list(spec.depends_on))
    for index, task_id in enumerate(spec.depends_on):
        dependency = lookups.task(task_id)
        if dependency is None:
            raise FieldError(f"dependsOn.{index}", "Task not found in this project", task_id)
        if spec.batch_id is not None and dependency.depends_on_batch == spec.batch_id:
            raise FieldError(f"dependsOn.{index}", "Task waits for this task's batch: each "
                             "would wait for the other", task_id)
    batch_id = spec.depends_on_batch
    if batch_id is not None:
        if batch_id == spec.batch_id:
            raise FieldError("dependsOnBatch", "A task cannot wait for its own batch",
                             batch_id)
        if not any(lookups.batch(batch_id).values()):
            raise FieldError("dependsOnBatch", "Batch has no task in this project", batch_id)


def starting(lookups: Lookups, task: Task, now: float) -> Task:
    """A new task as its dependencies say it starts: queued, waiting, or already failed."""
    if not dependencies.has_dependencies(task):
        return task
    status, error = lookups.outlook(task)
    return dependencies.settle(task, status, error, now)


def release_dependents(tx: ProjectTx, finished: Iterable[Task], now: float) -> list[Task]:
    """Move the waiting dependents of these tasks (just stored, in this section) where
    their dependencies now say, cascading through dependents that fail in turn; returns
    the tasks changed. Call it after storing any change that finishes a task."""
    lookups = Lookups(tx)
    changed: list[Task] = []
    frontier = [task for task in finished if task.status in FINISHED]
    while frontier:
        lookups.new_round()
        lookups.mine.update((task.id, task) for task in frontier)
        lookups.tasks.update(lookups.mine)
        batches = _finished_batches(tx, lookups, {t.batch_id for t in frontier if t.batch_id})
        waiting = tx.waiting_dependents([task.id for task in frontier], batches)
        # Each moved where its dependencies said before any of them moved: a sibling's
        # move matters only by finishing it, and the next round looks at its dependents.
        moved = [(dependent, dependencies.settle(dependent, *lookups.outlook(dependent), now))
                 for dependent in waiting]
        moved = [(old, new) for old, new in moved if new is not old]
        tx.put_tasks([new for _, new in moved])  # one write for the whole round
        for old, new in moved:
            lookups.changed(old, new)
            changed.append(new)
        frontier = [new for _, new in moved if new.status in FINISHED]
    return changed


def _finished_batches(tx: ProjectTx, lookups: Lookups, batch_ids: set[str]) -> list[str]:
    """Of the batches of tasks this section finished, those with dependents that are now
    finished, counted once no concurrent finisher or creator can change the answer."""
    ordered = sorted(batch_ids)  # always taken in one order: no two sections deadlock
    for batch_id in ordered:
        tx.guard_batch(batch_id, creating=False)
    found = []
    for batch_id in ordered:
        if tx.dependents(None, batch_id, limit=1):
            tx.serialize_batch_release(batch_id)
            lookups.batches.pop(batch_id, None)  # counted again, holding it
            if dependencies.batch_finished(lookups.batch(batch_id)):
                found.append(batch_id)
    return found


def retried(tx: ProjectTx, task: Task) -> Task:
    """A task `rules.retry` queued again, moved where its dependencies now say."""
    if not dependencies.has_dependencies(task):
        return task
    status, error = Lookups(tx).outlook(task)
    return dependencies.retried(task, status, error)


def refuse_delete_if_depended_on(tx: ProjectTx, task: Task) -> None:
    """A task others depend on (itself or, for a batch's dependents, its batch) stays."""
    found = tx.dependents(task.id, task.batch_id, limit=1)
    if found:
        raise Conflict(f"Task {found[0]} depends on this task; delete that one first")


def refuse_if_batch_depended_on(tx: ProjectTx, batch_id: str) -> None:
    """A task leaves a batch others depend on only by finishing (409)."""
    found = tx.dependents(None, batch_id, limit=1)
    if found:
        raise Conflict(f"Task {found[0]} depends on batch {batch_id}; a task cannot leave it")


def detail(tx: ProjectTx, task: Task, with_dependents: bool = True) -> TaskDetail:
    """A task with its dependencies as they are now and (`with_dependents`) the ids of
    those waiting for it."""
    if not dependencies.has_dependencies(task) and not with_dependents:
        return TaskDetail(task)
    found = tuple(dep for dep in (tx.get_task(task_id) for task_id in task.depends_on)
                  if dep is not None)
    batch: BatchSummary | None = None
    if task.depends_on_batch is not None:
        counts = tx.status_counts(task.depends_on_batch)
        batch = dependencies.batch_summary(task.depends_on_batch, counts)
    waiting_for_it = (tuple(tx.dependents(task.id, task.batch_id, DEPENDENTS_SHOWN))
                      if with_dependents else ())
    return TaskDetail(task, found, batch, waiting_for_it)
