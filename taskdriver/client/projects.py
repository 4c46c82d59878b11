"""Projects: list, create, read, update, delete, and a project's id from its name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from .errors import ApiError
from .transport import Transport, is_uuid, new_key, present
from .types import Page, Project

PROJECT_PAGE_SIZE = 100  # the projects list pages by 100 at most


class ProjectEndpoints(Transport):
    """The `/api/projects` endpoints; `project_id` resolves a name for the other nouns."""

    def list_projects(self, status: str = "active", limit: int = 100, offset: int = 0
                      ) -> Page:
        return self._page("/api/projects", {"status": status, "limit": limit,
                                            "offset": offset})

    def iter_projects(self, status: str = "active") -> Iterator[Project]:
        """Every project with this status (`active`, `closed` or `all`), oldest first."""
        return self._every("/api/projects", {"status": status}, PROJECT_PAGE_SIZE)

    def create_project(self, name: str, description: str = "", instructions: str = "",
                       config: dict[str, Any] | None = None,
                       idempotency_key: str | None = None) -> Project:
        body = present({"name": name, "description": description,
                         "instructions": instructions, "config": config})
        return cast(Project, self._data("POST", "/api/projects", json=body,
                                        idempotency_key=idempotency_key or new_key()))

    def get_project(self, project_id: str) -> Project:
        return cast(Project, self._data("GET", f"/api/projects/{self.project_id(project_id)}",
                                        safe=True))

    def update_project(self, project_id: str, **fields: Any) -> Project:
        return cast(Project, self._data("PUT", f"/api/projects/{self.project_id(project_id)}",
                                        json=fields))

    def pause_project(self, project_id: str, paused: bool = True) -> Project:
        """Stop next-task handing out the project's work (`paused=False`: resume at once);
        agents' resumes, reports and extensions go on."""
        return self.update_project(project_id, paused=paused)

    def delete_project(self, project_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._data(
            "DELETE", f"/api/projects/{self.project_id(project_id)}"))

    def project_id(self, reference: str) -> str:
        """A project's id from its id or its name (paths take ids only)."""
        if is_uuid(reference):
            return reference
        for project in self.iter_projects("all"):
            if project["name"] == reference:
                return str(project["id"])
        raise ApiError(404, f"Project not found: {reference}")
