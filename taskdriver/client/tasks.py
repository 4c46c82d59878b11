"""Tasks as an operator sees them: create (one or in bulk), list, read, change, retry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from .projects import ProjectEndpoints
from .transport import new_key, present, quoted
from .types import BulkResult, Page, Task


class TaskEndpoints(ProjectEndpoints):
    """The task endpoints, under a project and by id (leasing is the queue's)."""

    def list_tasks(self, project_id: str, *, status: str | None = None,
                   assigned_to: str | None = None, batch_id: str | None = None,
                   type_id: str | None = None, limit: int = 100, offset: int = 0,
                   archived: bool = False) -> Page:
        """One page of matching tasks; with `archived`, of the project's archive."""
        return self._page(f"/api/projects/{self.project_id(project_id)}/tasks",
                          {"status": status, "assignedTo": assigned_to, "batchId": batch_id,
                           "typeId": type_id, "limit": limit, "offset": offset,
                           "archived": "true" if archived else None})

    def iter_tasks(self, project_id: str, *, status: str | None = None,
                   assigned_to: str | None = None, batch_id: str | None = None,
                   type_id: str | None = None, archived: bool = False) -> Iterator[Task]:
        """Every matching task, oldest first, fetched a page of 1,000 at a time; with
        `archived`, the project's archived tasks."""
        return self._every(f"/api/projects/{self.project_id(project_id)}/tasks",
                           present({"status": status, "assignedTo": assigned_to,
                                     "batchId": batch_id, "typeId": type_id,
                                     "archived": "true" if archived else None}))

    def create_task(self, project_id: str, *, instructions: str | None = None,
                    type_id: str | None = None, variables: dict[str, str] | None = None,
                    batch_id: str | None = None, description: str | None = None,
                    priority: int | None = None, delay_seconds: float | None = None,
                    run_after: str | None = None, depends_on: list[str] | None = None,
                    depends_on_batch: str | None = None,
                    on_dependency_failure: str | None = None,
                    idempotency_key: str | None = None) -> Task:
        """Create one task; `priority` (higher first), and `delay_seconds` or `run_after`
        (RFC 3339) to hold it back until then; `depends_on` (task ids) and
        `depends_on_batch` to keep it `waiting` until they finish, and what to do should
        one of them fail (`on_dependency_failure`: "fail", the default, or "run")."""
        body = present({"instructions": instructions, "typeId": type_id,
                         "variables": variables, "batchId": batch_id,
                         "description": description, "priority": priority,
                         "delaySeconds": delay_seconds, "runAfter": run_after,
                         "dependsOn": depends_on, "dependsOnBatch": depends_on_batch,
                         "onDependencyFailure": on_dependency_failure})
        return cast(Task, self._data("POST",
                                     f"/api/projects/{self.project_id(project_id)}/tasks",
                                     json=body, idempotency_key=idempotency_key or new_key()))

    def create_tasks_bulk(self, project_id: str, tasks: list[dict[str, Any]],
                          batch_id: str | None = None,
                          idempotency_key: str | None = None) -> BulkResult:
        """Create up to 1,000 tasks in one request (each item as for `create_task`, in the
        API's camelCase); safe to retry, as it carries an Idempotency-Key."""
        body = present({"tasks": tasks, "batchId": batch_id})
        return cast(BulkResult, self._data(
            "POST", f"/api/projects/{self.project_id(project_id)}/tasks/bulk", json=body,
            idempotency_key=idempotency_key or new_key()))

    def get_task(self, task_id: str) -> Task:
        return cast(Task, self._data("GET", f"/api/tasks/{quoted(task_id)}", safe=True))

    def update_task(self, task_id: str, **fields: Any) -> Task:
        return cast(Task, self._data("PUT", f"/api/tasks/{quoted(task_id)}", json=fields))

    def delete_task(self, task_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("DELETE", f"/api/tasks/{quoted(task_id)}"))

    def retry_task(self, task_id: str) -> Task:
        return cast(Task, self._data("POST", f"/api/tasks/{quoted(task_id)}/retry"))

    def retry_failed(self, project_id: str, batch_id: str | None = None,
                     type_id: str | None = None) -> int:
        """Send every failed task of the project (of a batch, of a type) back to the queue."""
        data = self._data("POST", f"/api/projects/{self.project_id(project_id)}/tasks/retry",
                          json=present({"batchId": batch_id, "typeId": type_id}))
        return int(data["retried"])

    def cancel_task(self, task_id: str, reason: str | None = None) -> Task:
        """End a queued or running task for good (operators only); its holder's later
        reports are refused."""
        return cast(Task, self._data("POST", f"/api/tasks/{quoted(task_id)}/cancel",
                                     json=present({"reason": reason})))

    def cancel_tasks(self, project_id: str, batch_id: str | None = None,
                     type_id: str | None = None, status: str | None = None) -> int:
        """Cancel every unfinished task of the project (of a batch, a type, `queued` or
        `running` only) in one commit; returns how many."""
        data = self._data("POST", f"/api/projects/{self.project_id(project_id)}/tasks/cancel",
                          json=present({"batchId": batch_id, "typeId": type_id,
                                        "status": status}))
        return int(data["cancelled"])
