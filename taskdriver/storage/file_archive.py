"""The archive's part of a file backend project section (see `archive_contract.py`).

Archiving a chunk writes its segment file first (`archive_files.py`), then the section's
one journal line deletes the tasks from the live state and registers the segment: the
commit that makes the move is that line, so a crash anywhere leaves each task once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from ..answers import TaskFilter
from ..archiving import ArchivedTask, ArchiveSegment, finished_moment
from ..models import Task, TaskStatus
from .archive_contract import ArchiveTx
from .archive_files import ArchiveFiles
from .archive_registry import ARCHIVE
from .listing import task_passes
from .packed import PackedTask
from .state import TASK, ProjectState


class FileArchive(ArchiveTx):
    """Mixed into `file.FileProjectTx`, whose change log and state it uses."""

    state: ProjectState
    project_id: str
    archive: ArchiveFiles
    after_commit: list[Callable[[], None]]
    _put: Callable[[str, str, Any], None]  # the change log's

    def finished_before(self, statuses: Collection[TaskStatus], before: float, limit: int
                        ) -> list[Task]:
        found: list[Task] = []
        for packed in self.state.tasks.values():  # creation order: the oldest come first
            if packed.status in statuses and _finished(packed) < before:
                found.append(packed.unpack(self.project_id))
                if len(found) == limit:
                    break
        return found

    def archive_tasks(self, segment: ArchiveSegment, tasks: Sequence[Task]) -> None:
        if not tasks:
            return
        self.archive.write(segment.id, tasks)
        for task in tasks:
            self._put(TASK, task.id, None)
        self._put(ARCHIVE, segment.id, segment)

    def archive_segments(self) -> list[ArchiveSegment]:
        return list(self.state.archive.segments.values())

    def archived_counts(self, batch_id: str | None = None) -> dict[TaskStatus, int]:
        registry = self.state.archive
        kept: Mapping[str, int] = (registry.counts if batch_id is None
                                   else registry.batches.get(batch_id) or {})
        return {status: kept.get(status.value, 0) for status in TaskStatus}

    def archived_batch_ids(self) -> list[str]:
        return list(self.state.archive.batches)

    def get_archived_task(self, task_id: str) -> ArchivedTask | None:
        place = self.archive.locate(task_id)
        if place is None or place[0] not in self.state.archive.segments:
            return None  # never archived, or in a segment a crash left unregistered
        return self.archive.read(*place, task_id)

    def list_archived(self, task_filter: TaskFilter, limit: int, offset: int
                      ) -> tuple[list[ArchivedTask], int]:
        segments = list(self.state.archive.segments.values())
        if task_filter == TaskFilter():  # whole segments skipped by their counts
            total = sum(segment.task_count for segment in segments)
            skipped = 0
            while segments and skipped + segments[0].task_count <= offset:
                skipped += segments.pop(0).task_count
            tasks = self._stream(segments)
            return list(itertools.islice(tasks, offset - skipped, offset - skipped + limit)), total
        matches = (task for task in self._stream(segments) if task_passes(task_filter, task))
        page, total = [], 0
        for total, task in enumerate(matches, start=1):
            if offset < total <= offset + limit:
                page.append(task)
        return page, total

    def _stream(self, segments: list[ArchiveSegment]) -> Iterator[ArchivedTask]:
        for segment in segments:
            try:
                yield from self.archive.tasks(segment.id)
            except FileNotFoundError:
                continue  # deleted (past its retention) while we read

    def sweep_archive(self) -> int:
        return self.archive.sweep(set(self.state.archive.segments))

    def delete_archive_segment(self, segment_id: str) -> None:
        self._put(ARCHIVE, segment_id, None)
        self.after_commit.append(lambda: self.archive.delete(segment_id))


def _finished(task: PackedTask) -> float:
    return finished_moment(task)  # type: ignore[arg-type]  # reads the same two fields
