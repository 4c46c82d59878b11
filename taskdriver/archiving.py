"""The archive's rules: which finished tasks leave the live store, and when the archive
lets go of them. Pure, like `rules.py`: every function takes `now`.

A project's finished tasks move, in chunks, into its archive: each chunk becomes one
*segment*, a unit that is written once, read by id or in order, and deleted whole. The live
store then holds only the work at hand, so a worker's memory and cold start follow the live
tasks, not history; the numbers an operator sees (totals, batch counts) keep counting the
archived tasks through each segment's counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .models import Task, TaskStatus, new_id

FINISHED_STATUSES: frozenset[TaskStatus] = frozenset({
    TaskStatus.COMPLETED,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
})
"""The statuses a task never leaves on its own: the archivable ones."""

SECONDS_PER_DAY = 86400.0
MIN_ARCHIVE_DAYS, MAX_ARCHIVE_DAYS = 0.01, 3650.0
ARCHIVE_CHUNK = 2000
"""Tasks per segment: what one archiving step holds in memory and writes at once (about a
megabyte), so a first run over a big backlog neither stalls a project nor needs memory for
all of it."""


@dataclass(frozen=True, slots=True)
class ArchivedTask(Task):
    """A task read from the archive (the API answers it with `archived: true`)."""


@dataclass(frozen=True, slots=True)
class ArchiveSegment:
    """One chunk of a project's archive: what it holds, counted, and when it was written.

    `counts`: status value -> tasks; `batches`: batch id -> status value -> tasks, so that
    stats and batch progress keep counting archived tasks without reading them.
    `max_seq`: the highest queue position in it (positions never repeat, even once every
    task that held one is archived).
    """

    id: str
    archived_at: float
    task_count: int
    counts: dict[str, int]
    batches: dict[str, dict[str, int]]
    max_seq: int


def finished_moment(task: Task) -> float:
    """When a task finished: its `completed_at`, or its last update (a failed task)."""
    return task.completed_at if task.completed_at is not None else task.updated_at


def archive_cutoff(now: float, days: float) -> float:
    """Tasks that finished before this moment are old enough for the archive."""
    return now - days * SECONDS_PER_DAY


def archivable(task: Task, now: float, days: float) -> bool:
    """Whether a task may leave the live store: finished, longer ago than `days`."""
    return task.status in FINISHED_STATUSES and finished_moment(task) < archive_cutoff(now, days)


def segment_of(tasks: Sequence[Task], now: float) -> ArchiveSegment:
    """The segment record for a chunk of tasks archived at `now`."""
    batches: dict[str, Counter[str]] = {}
    for task in tasks:
        if task.batch_id is not None:
            batches.setdefault(task.batch_id, Counter())[task.status.value] += 1
    # Ids sort in archive order: by moment, then by the chunk's first position (the chunks
    # of one run share a moment), then a random part that keeps two runs' ids apart.
    first_seq = min((task.seq for task in tasks), default=0)
    segment_id = f"{int(now * 1000):015d}-{first_seq:015d}-{new_id()[:8]}"
    return ArchiveSegment(id=segment_id, archived_at=now,
                          task_count=len(tasks),
                          counts=dict(Counter(task.status.value for task in tasks)),
                          batches={batch: dict(counts) for batch, counts in batches.items()},
                          max_seq=max((task.seq for task in tasks), default=0))


def segment_expired(segment: ArchiveSegment, now: float, delete_after_days: float | None
                    ) -> bool:
    """Whether a segment is to be deleted: archived longer ago than `delete_after_days`
    (None: the archive keeps everything)."""
    return (delete_after_days is not None
            and segment.archived_at < now - delete_after_days * SECONDS_PER_DAY)


def archived_counts(segments: Iterable[ArchiveSegment], batch_id: str | None = None
                    ) -> dict[TaskStatus, int]:
    """How many archived tasks are in each status, in all segments or in one batch."""
    counts = {status: 0 for status in TaskStatus}
    for segment in segments:
        kept = segment.counts if batch_id is None else segment.batches.get(batch_id, {})
        for status, count in kept.items():
            counts[TaskStatus(status)] += count
    return counts
