"""The archive's part of a project section (`base.ProjectTx` inherits it).

A backend keeps a project's archive apart from its live tasks: the queue's lookups, the
duplicate check and the live counts never see it. Moving tasks there is one commit of the
section, so a crash at any instant leaves each task exactly once, live or archived. What is
archivable is the domain's rule (`archiving.py`); a backend only finds candidates by the
statuses and the moment it is given, and persists.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence

from ..answers import TaskFilter
from ..archiving import ArchivedTask, ArchiveSegment
from ..models import Task, TaskStatus


class ArchiveTx(ABC):
    """A project's archive, inside the project's atomic section."""

    @abstractmethod
    def finished_before(self, statuses: Collection[TaskStatus], before: float, limit: int
                        ) -> list[Task]:
        """Up to `limit` live tasks in `statuses` whose finished moment (`completed_at`, else
        `updated_at`) is before `before`, lowest `seq` first, each then held by this
        section (tasks other sections hold are passed over)."""

    @abstractmethod
    def archive_tasks(self, segment: ArchiveSegment, tasks: Sequence[Task]) -> None:
        """Move these live tasks (held by this section) into a new segment of the archive,
        in the section's commit: none of it is kept if the section fails."""

    @abstractmethod
    def archive_segments(self) -> list[ArchiveSegment]:
        """The archive's segments, oldest first."""

    @abstractmethod
    def archived_counts(self, batch_id: str | None = None) -> dict[TaskStatus, int]:
        """How many archived tasks are in each status (in all, or of one batch)."""

    @abstractmethod
    def archived_batch_ids(self) -> list[str]:
        """The batch ids archived tasks carry, oldest segment first."""

    @abstractmethod
    def get_archived_task(self, task_id: str) -> ArchivedTask | None:
        """The archived task with this id."""

    @abstractmethod
    def list_archived(self, task_filter: TaskFilter, limit: int, offset: int
                      ) -> tuple[list[ArchivedTask], int]:
        """One page of matching archived tasks, oldest segment first and by `seq` within
        it, and how many match in all."""

    @abstractmethod
    def delete_archive_segment(self, segment_id: str) -> None:
        """Delete one whole segment with its tasks, in the section's commit."""

    def sweep_archive(self) -> int:
        """Remove what a crash left half-made (a segment written, its move never committed);
        how many pieces went. A backend whose move is one database transaction has none."""
        return 0
