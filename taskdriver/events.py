"""What the service reports after a commit, for metrics; it knows nothing of Prometheus."""

from __future__ import annotations


class QueueEvents:
    """Hooks called after each committed change; this base class ignores them all."""

    def tasks_created(self, project_id: str, count: int) -> None:
        """New tasks entered the queue."""

    def task_completed(self, project_id: str) -> None:
        """A task became `completed`."""

    def task_failed(self, project_id: str) -> None:
        """A task became `failed` (its retries are spent, or the agent refused a retry)."""

    def leases_expired(self, project_id: str, count: int) -> None:
        """Expired leases were reclaimed."""

    def long_polls_woken(self, count: int) -> None:
        """Waiting long polls were woken to look for work."""

    def long_polls_waiting(self, change: int) -> None:
        """Long polls began (+1) or stopped (-1) waiting for work."""
