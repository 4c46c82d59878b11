"""Task types: a project's templates, defaults and retry rules for its tasks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from .errors import ApiError
from .projects import ProjectEndpoints
from .transport import is_uuid, new_key, quoted
from .types import Page, TaskType


class TaskTypeEndpoints(ProjectEndpoints):
    """The task type endpoints, under a project and by id."""

    def list_task_types(self, project_id: str, limit: int = 100, offset: int = 0) -> Page:
        return self._page(f"/api/projects/{self.project_id(project_id)}/task-types",
                          {"limit": limit, "offset": offset})

    def iter_task_types(self, project_id: str) -> Iterator[TaskType]:
        """Every task type of the project."""
        return self._every(f"/api/projects/{self.project_id(project_id)}/task-types", {})

    def create_task_type(self, project_id: str, name: str,
                         idempotency_key: str | None = None, **fields: Any) -> TaskType:
        return cast(TaskType, self._data(
            "POST", f"/api/projects/{self.project_id(project_id)}/task-types",
            json={"name": name, **fields}, idempotency_key=idempotency_key or new_key()))

    def get_task_type(self, type_id: str) -> TaskType:
        return cast(TaskType, self._data("GET", f"/api/task-types/{quoted(type_id)}", safe=True))

    def update_task_type(self, type_id: str, **fields: Any) -> TaskType:
        return cast(TaskType, self._data("PUT", f"/api/task-types/{quoted(type_id)}",
                                         json=fields))

    def pause_task_type(self, type_id: str, paused: bool = True) -> TaskType:
        """Stop next-task handing out the type's tasks (`paused=False`: resume at once).
        Its limits are fields: `update_task_type(id, maxConcurrent=3, rateLimit={...})`."""
        return self.update_task_type(type_id, paused=paused)

    def delete_task_type(self, type_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("DELETE", f"/api/task-types/{quoted(type_id)}"))

    def task_type_id(self, project_id: str, reference: str) -> str:
        """A task type's id from its id or its name within the project."""
        if is_uuid(reference):
            return reference
        for task_type in self.iter_task_types(project_id):
            if task_type["name"] == reference:
                return str(task_type["id"])
        raise ApiError(404, f"Task type not found in project {project_id}: {reference}")
