"""The archive: finished tasks leave the live store in chunks, and stay readable.

Archiving a project repeats one step, each in its own shared project section: find up to
`archiving.ARCHIVE_CHUNK` finished tasks old enough (`archiving.archivable`), and move them
into one new segment. A step holds the project for about one bulk write, so requests go on
between steps, and a first run over a big backlog never holds more than one chunk in
memory. Segments past the project's `deleteArchivedAfterDays` are then deleted whole.

Reading: a task id the live store does not know is looked for in the archive of the
project its id names (`models.new_id_within`); counts add the archive's to the live ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from .. import access, archiving
from ..archiving import ArchivedTask
from ..errors import NotFound
from ..models import Principal, Project, TaskStatus, owner_prefix
from ..storage import ProjectTx
from .base import Core


@dataclass(frozen=True, slots=True)
class ArchiveRun:
    """What archiving one project did: tasks moved, segments written and deleted."""

    project: Project
    archived: int
    segments: int
    deleted_segments: int
    deleted_tasks: int


def with_archived(tx: ProjectTx, batch_id: str | None = None
                  ) -> tuple[dict[TaskStatus, int], int]:
    """Counts by status of the live and the archived tasks together (of the project, or of
    one batch), and how many of them are archived: the totals an operator saw do not drop
    when tasks are archived."""
    live = tx.status_counts(batch_id)
    archived = tx.archived_counts(batch_id)
    return ({status: count + archived.get(status, 0) for status, count in live.items()},
            sum(archived.values()))


def batch_ids_with_archived(tx: ProjectTx) -> list[str]:
    """Every batch id, the archived ones' first (they are older), each once."""
    return list(dict.fromkeys([*tx.archived_batch_ids(), *tx.batch_ids()]))


def find_archived(core: Core, principal: Principal, task_id: str) -> ArchivedTask:
    """An archived task, as the caller may see it, or NotFound.

    Only the projects whose id starts like the task's are looked into (plus any made before
    ids were so): one read of one archive index, almost always."""
    with core.storage.global_tx(write=False) as tx:
        projects = tx.list_projects()
    prefix = owner_prefix(task_id)
    candidates = [p for p in projects if p.id.startswith(prefix)] + [
        p for p in projects if not p.owner_prefixed_ids and not p.id.startswith(prefix)]
    for project in candidates:
        try:
            with core.storage.project_tx(project.id, write=False) as ptx:
                task = ptx.get_archived_task(task_id)
        except NotFound:
            continue  # deleted while we looked
        if task is not None:
            access.require_project(principal, project.id)
            return task
    raise NotFound("Task not found")


class Archive:
    """Moving finished tasks to the archive, and letting it go after its retention."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def archive(self, project_ids: list[str] | None = None,
                older_than_days: float | None = None) -> list[ArchiveRun]:
        """Archive the given projects (all by default); `older_than_days` overrides each
        project's `archiveAfterDays` for this run."""
        with self.core.storage.global_tx(write=False) as tx:
            projects = [p for p in tx.list_projects()
                        if project_ids is None or p.id in project_ids]
        return [self.archive_project(project, older_than_days) for project in projects]

    def archive_project(self, project: Project, older_than_days: float | None = None
                        ) -> ArchiveRun:
        """Move a project's old finished tasks to its archive, chunk by chunk, then delete
        its segments past retention."""
        days = (project.config.archive_after_days if older_than_days is None
                else older_than_days)
        archived = segments = 0
        try:
            while True:
                moved, looked_at = self.core.shared(
                    project.id, partial(self._step, days=days, sweep=not segments))
                archived += moved
                segments += moved > 0
                if not moved or looked_at < archiving.ARCHIVE_CHUNK:
                    break
            deleted_segments, deleted_tasks = self._delete_expired(project)
        except NotFound:  # the project was deleted meanwhile: nothing left to archive
            deleted_segments = deleted_tasks = 0
        return ArchiveRun(project, archived, segments, deleted_segments, deleted_tasks)

    def _step(self, tx: ProjectTx, days: float, sweep: bool) -> tuple[int, int]:
        """Move one chunk (the run's first one after sweeping away what a crash left
        half-made); (tasks moved, candidates looked at)."""
        if sweep:
            tx.sweep_archive()
        now = self.core.now()
        found = tx.finished_before(archiving.FINISHED_STATUSES,
                                   archiving.archive_cutoff(now, days), archiving.ARCHIVE_CHUNK)
        chunk = [task for task in found if archiving.archivable(task, now, days)]
        if chunk:
            tx.archive_tasks(archiving.segment_of(chunk, now), chunk)
        return len(chunk), len(found)

    def _delete_expired(self, project: Project) -> tuple[int, int]:
        """Delete the segments past the project's retention; (segments, tasks) deleted."""
        if project.config.delete_archived_after_days is None:
            return 0, 0
        with self.core.storage.project_tx(project.id) as tx:
            now = self.core.now()
            expired = [segment for segment in tx.archive_segments()
                       if archiving.segment_expired(
                           segment, now, project.config.delete_archived_after_days)]
            for segment in expired:
                tx.delete_archive_segment(segment.id)
        return len(expired), sum(segment.task_count for segment in expired)
