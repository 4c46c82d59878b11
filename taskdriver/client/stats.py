"""What the server reports: a project's stats, its batches' progress, health, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from .errors import ApiError
from .projects import ProjectEndpoints
from .transport import quoted
from .types import Batch, ProjectStats


class StatsEndpoints(ProjectEndpoints):
    """Read-only reports: safe to repeat, so every call here is retried."""

    def project_stats(self, project_id: str) -> ProjectStats:
        return cast(ProjectStats, self._data(
            "GET", f"/api/projects/{self.project_id(project_id)}/stats", safe=True))

    def iter_batches(self, project_id: str) -> Iterator[Batch]:
        """Every batch of the project with its progress, in order of first use."""
        return self._every(f"/api/projects/{self.project_id(project_id)}/batches", {})

    def batch_status(self, project_id: str, batch_id: str) -> Batch:
        return cast(Batch, self._data(
            "GET", f"/api/projects/{self.project_id(project_id)}/batches/{quoted(batch_id)}",
            safe=True))

    def health(self) -> dict[str, Any]:
        """The health body (also when the server answers 503 unhealthy)."""
        try:
            return self.call("GET", "/health", safe=True, authenticated=False)["data"]
        except ApiError as exc:
            if exc.status == 503:
                return {"status": "unhealthy", "error": exc.message}
            raise

    def metrics(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("GET", "/metrics/json", safe=True,
                                               authenticated=False))
