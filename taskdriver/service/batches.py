"""Progress and statistics: batches, a project's stats, and its throughput over time."""

from __future__ import annotations

from .. import rules
from ..answers import BatchProgress, ProjectStats, ProjectView, Throughput
from ..errors import NotFound
from ..models import Principal, TaskStatus
from .archive import batch_ids_with_archived, with_archived
from .base import Core

RECENT_WINDOW_SECONDS = 3600.0


class Batches:
    """Read-only figures over a project's tasks."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def list_batches(self, principal: Principal, project_id: str, limit: int, offset: int
                     ) -> tuple[list[BatchProgress], int]:
        """One page of the project's batches (in order of first use) with their progress."""
        project = self.core.project(principal, project_id)
        with self.core.storage.project_tx(project.id, write=False) as tx:
            batch_ids = batch_ids_with_archived(tx)
            progress = []
            for batch_id in batch_ids[offset:offset + limit]:
                counts, _ = with_archived(tx, batch_id)
                progress.append(BatchProgress(batch_id, counts, not rules.in_progress(counts)))
        return progress, len(batch_ids)

    def batch_progress(self, principal: Principal, project_id: str, batch_id: str
                       ) -> BatchProgress:
        """One batch's task counts, and whether it is done."""
        project = self.core.project(principal, project_id)
        with self.core.storage.project_tx(project.id, write=False) as tx:
            counts, _ = with_archived(tx, batch_id)
        if not any(counts.values()):
            raise NotFound("Batch not found")
        return BatchProgress(batch_id, counts, done=not rules.in_progress(counts))

    def project_stats(self, principal: Principal, project_id: str) -> ProjectStats:
        """Queue depth, working agents and the last hour's outcomes."""
        project = self.core.project(principal, project_id)
        with self.core.storage.project_tx(project.id, write=False) as tx:
            now = self.core.now()
            counts, archived = with_archived(tx)
            agents = {t.assigned_to for t in tx.running_tasks()
                      if not rules.lease_expired(t, now)}
            recent = tx.recent_activity(now - RECENT_WINDOW_SECONDS)
            delayed = tx.delayed_count(now)
        return ProjectStats(ProjectView(project, counts, archived), counts[TaskStatus.QUEUED],
                            len(agents), recent,
                            rules.average_duration(recent.completed,
                                                   recent.completed_duration_total),
                            delayed)

    def throughput(self, principal: Principal, project_id: str, hours: float,
                   bucket_minutes: float) -> Throughput:
        """Completions and failures per `bucket_minutes` over the last `hours` (chart data)."""
        project = self.core.project(principal, project_id)
        bucket = bucket_minutes * rules.SECONDS_PER_MINUTE
        buckets = max(1, int(hours * 3600 / bucket))
        with self.core.storage.project_tx(project.id, write=False) as tx:
            now = self.core.now()
            start = now - buckets * bucket
            completed, failed = tx.outcome_times(start)
        return Throughput(start, bucket, rules.histogram(completed, start, bucket, buckets),
                          rules.histogram(failed, start, bucket, buckets))
