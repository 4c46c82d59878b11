"""The archive's part of a PostgreSQL project section (migration 0007, `sql/archive.sql`).

Archived tasks live in `td_archived_tasks`, outside the claim path: the queue's queries,
indexes and kept counts see only `td_tasks`. A chunk moves in one statement of the
section's transaction (delete from the live table, insert into the archive), so a crash
leaves each task once. A segment is a row of `td_archive_segments` with its counts; its
tasks are deleted with it (cascade).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from ..answers import TaskFilter
from ..archiving import ArchivedTask, ArchiveSegment, archived_counts
from ..models import Task, TaskStatus
from .archive_contract import ArchiveTx
from .codec import decode_archived_task, decode_task
from .postgres_sections import as_json


class PostgresArchive(ArchiveTx):
    """Mixed into `postgres_tasks.PostgresProjectTx`, whose queries it runs."""

    project_id: str

    # The section's own (`postgres_sections.Section`).
    _run: Callable[..., Any]
    _all: Callable[..., list[Any]]
    _one: Callable[..., Any]
    _check_write: Callable[[], None]

    def finished_before(self, statuses: Collection[TaskStatus], before: float, limit: int
                        ) -> list[Task]:
        return [decode_task(raw) for raw in self._all(
            "finished_before", project_id=self.project_id,
            statuses=[status.value for status in statuses], before=before, limit=limit)]

    def archive_tasks(self, segment: ArchiveSegment, tasks: Sequence[Task]) -> None:
        self._check_write()
        if not tasks:
            return
        self._run("add_archive_segment", id=segment.id, project_id=self.project_id,
                  archived_at=segment.archived_at, data=as_json(segment))
        self._run("archive_tasks", project_id=self.project_id, segment_id=segment.id,
                  ids=[task.id for task in tasks])

    def archive_segments(self) -> list[ArchiveSegment]:
        return [ArchiveSegment(**raw)
                for raw in self._all("archive_segments", project_id=self.project_id)]

    def archived_counts(self, batch_id: str | None = None) -> dict[TaskStatus, int]:
        return archived_counts(self.archive_segments(), batch_id)

    def archived_batch_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for segment in self.archive_segments():
            seen.update(dict.fromkeys(segment.batches))
        return list(seen)

    def get_archived_task(self, task_id: str) -> ArchivedTask | None:
        raw = self._one("get_archived_task", id=task_id, project_id=self.project_id)
        return None if raw is None else decode_archived_task(raw)

    def list_archived(self, task_filter: TaskFilter, limit: int, offset: int
                      ) -> tuple[list[ArchivedTask], int]:
        filters = {"status": task_filter.status.value if task_filter.status else None,
                   "assigned_to": task_filter.assigned_to, "batch_id": task_filter.batch_id,
                   "type_id": task_filter.type_id, "batch_contains": task_filter.batch_contains,
                   "agent_contains": task_filter.agent_contains, "text": task_filter.text}
        tasks = [decode_archived_task(raw) for raw in self._all(
            "list_archived", project_id=self.project_id, **filters, limit=limit, offset=offset)]
        return tasks, int(self._one("count_archived", project_id=self.project_id, **filters))

    def delete_archive_segment(self, segment_id: str) -> None:
        self._check_write()
        self._run("delete_archive_segment", id=segment_id, project_id=self.project_id)
