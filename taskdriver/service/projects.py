"""Projects: list, create, read, update and delete them (with their task counts)."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from .. import access
from ..answers import ProjectView
from ..errors import NotFound
from ..inputs import ProjectChanges, ProjectSpec
from ..models import (
    Idempotency,
    Principal,
    Project,
    ProjectConfig,
    ProjectStatus,
    TaskStatus,
    new_id,
)
from .archive import with_archived
from .base import Core, earlier_outcome, load_project, refuse_taken_name, remember, still_there


class Projects:
    """Projects as the caller may see them; only operators change them."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def view(self, project: Project) -> ProjectView:
        """A project with its task counts."""
        with self.core.storage.project_tx(project.id, write=False) as tx:
            return ProjectView(project, *with_archived(tx))

    def resolve_project(self, principal: Principal, reference: str) -> Project:
        """A project named by id or name, as the caller may see it (the operator CLI's
        `--project`, a body's `projectId`)."""
        return self.core.project(principal, reference, by_name=True)

    def list_projects(self, principal: Principal, status: str, limit: int, offset: int
                      ) -> tuple[list[ProjectView], int]:
        """One page of the projects in `status` (or `all`) the caller may see, and how
        many there are."""
        with self.core.storage.global_tx(write=False) as tx:
            projects = [p for p in tx.list_projects()
                        if status == "all" or p.status.value == status]
        if principal.session is not None:
            projects = [p for p in projects if p.id == principal.session.project_id]
        views = []
        for project in projects[offset:offset + limit]:
            try:
                views.append(self.view(project))
            except NotFound:
                continue  # deleted between the two sections
        return views, len(projects)

    def create_project(self, principal: Principal, spec: ProjectSpec,
                       idempotency: Idempotency | None = None) -> ProjectView:
        """Create a project (operators only); a repeat under its Idempotency-Key answers
        with the project the first one made."""
        access.require_admin(principal, "create projects")
        now = self.core.now()
        with self.core.storage.global_tx() as tx:
            earlier = earlier_outcome(tx, idempotency, now)
            if earlier is None:
                project = Project(id=new_id(), name=spec.name, description=spec.description,
                                  instructions=spec.instructions, status=ProjectStatus.ACTIVE,
                                  config=spec.config.applied_to(ProjectConfig()),
                                  created_at=now, updated_at=now, owner_prefixed_ids=True)
                refuse_taken_name("project", None, spec.name, tx.project_by_name)
                tx.put_project(project)
                remember(tx, idempotency, now, {"id": project.id})
                return ProjectView(project, {status: 0 for status in TaskStatus})
            project = still_there(tx.get_project(earlier["id"]), "project")
        return self.view(project)

    def get_project(self, principal: Principal, project_id: str) -> ProjectView:
        """A project with its task counts."""
        return self.view(self.core.project(principal, project_id))

    def update_project(self, principal: Principal, project_id: str,
                       changes: ProjectChanges) -> ProjectView:
        """Change the given fields; the config merges setting by setting (operators only)."""
        access.require_admin(principal, "update projects")
        with self.core.storage.global_tx() as tx:
            project = load_project(tx, project_id)
            refuse_taken_name("project", project.name, changes.name, tx.project_by_name)
            project = replace(
                project,
                name=_given(changes.name, project.name),
                description=_given(changes.description, project.description),
                instructions=_given(changes.instructions, project.instructions),
                status=_given(changes.status, project.status),
                paused=_given(changes.paused, project.paused),
                config=(project.config if changes.config is None
                        else changes.config.applied_to(project.config)),
                updated_at=self.core.now())
            tx.put_project(project)
        return self.view(project)

    def delete_project(self, principal: Principal, project_id: str) -> None:
        """Delete a project, its task types and tasks, and end its agents' sessions."""
        access.require_admin(principal, "delete projects")
        with self.core.storage.global_tx() as tx:
            load_project(tx, project_id)
            for session in tx.sessions():
                if session.project_id == project_id:
                    tx.delete_session(session.id)
            tx.delete_project(project_id)


_Value = TypeVar("_Value")


def _given(change: _Value | None, current: _Value) -> _Value:
    """The changed value, or the current one when the change leaves it alone."""
    return current if change is None else change
