"""Task types: prompt templates with their retry, lease, priority and duplicate rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import rules
from ..errors import Conflict, NotFound
from ..inputs import TaskTypeSpec
from ..models import DuplicateHandling, Idempotency, Principal, Project, TaskType, new_id_within
from ..templates import placeholders
from .base import Core, authorized, earlier_outcome, refuse_taken_name, remember, still_there

# Fields taken as given when set; left out, a new type has `models.TaskType`'s defaults.
QUEUE_FIELDS = ("priority", "retry_delay_seconds", "retry_backoff", "max_retry_delay_seconds",
                "max_concurrent", "rate_limit", "paused")


class TaskTypes:
    """A project's task types."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def _project_of_type(self, principal: Principal, type_id: str) -> Project:
        project = self.core.storage.project_of_task_type(type_id)
        if project is None:
            raise NotFound("Task type not found")
        return authorized(principal, project)

    def list_task_types(self, principal: Principal, project_id: str, limit: int, offset: int
                        ) -> tuple[list[TaskType], int]:
        """One page of the project's task types, oldest first, and how many there are."""
        project = self.core.project(principal, project_id)
        with self.core.storage.project_tx(project.id, write=False) as tx:
            task_types = tx.list_task_types()
        return task_types[offset:offset + limit], len(task_types)

    def create_task_type(self, principal: Principal, project_id: str, spec: TaskTypeSpec,
                         idempotency: Idempotency | None = None) -> TaskType:
        """Create a task type; its variables default to the template's placeholders and
        its retries and lease to the project's defaults."""
        if spec.name is None:
            raise ValueError("a new task type needs a name")
        project = self.core.project(principal, project_id)
        now = self.core.now()
        config = project.config
        task_type = TaskType(
            id=new_id_within(project.id), project_id=project.id, name=spec.name,
            template=spec.template,
            variables=tuple(spec.variables or placeholders(spec.template)),
            duplicate_handling=spec.duplicate_handling or DuplicateHandling.ALLOW,
            max_retries=(config.default_max_retries if spec.max_retries is None
                         else spec.max_retries),
            lease_duration_minutes=(config.default_lease_duration_minutes
                                    if spec.lease_duration_minutes is None
                                    else spec.lease_duration_minutes),
            created_at=now, updated_at=now,
            **{name: getattr(spec, name) for name in QUEUE_FIELDS
               if getattr(spec, name) is not None})
        rules.check_placeholders_declared(task_type)
        with self.core.storage.project_tx(project.id) as tx:
            earlier = earlier_outcome(tx, idempotency, now)
            if earlier is not None:
                return still_there(tx.get_task_type(earlier["id"]), "task type")
            refuse_taken_name("task type", None, task_type.name, tx.task_type_by_name)
            tx.put_task_type(task_type)
            remember(tx, idempotency, now, {"id": task_type.id})
        return task_type

    def get_task_type(self, principal: Principal, type_id: str) -> TaskType:
        """A task type, as the caller may see it."""
        project = self._project_of_type(principal, type_id)
        with self.core.storage.project_tx(project.id, write=False) as tx:
            task_type = tx.get_task_type(type_id)
        if task_type is None:
            raise NotFound("Task type not found")
        return task_type

    def update_task_type(self, principal: Principal, type_id: str, spec: TaskTypeSpec,
                         given: set[str]) -> TaskType:
        """Change the fields of `spec` that `given` names (existing tasks keep theirs)."""
        project = self._project_of_type(principal, type_id)
        with self.core.storage.project_tx(project.id) as tx:
            task_type = tx.get_task_type(type_id)
            if task_type is None:
                raise NotFound("Task type not found")
            changes: dict[str, Any] = {name: getattr(spec, name) for name in given}
            if "variables" in changes:
                changes["variables"] = tuple(changes["variables"])
            elif "template" in changes:
                # Undeclared placeholders of a new template become variables, as on create.
                changes["variables"] = tuple(dict.fromkeys(
                    [*task_type.variables, *placeholders(changes["template"])]))
            refuse_taken_name("task type", task_type.name, changes.get("name"),
                              tx.task_type_by_name)
            task_type = replace(task_type, **changes, updated_at=self.core.now())
            rules.check_placeholders_declared(task_type)
            tx.put_task_type(task_type)
        return task_type

    def delete_task_type(self, principal: Principal, type_id: str) -> None:
        """Delete a task type no queued or running task uses."""
        project = self._project_of_type(principal, type_id)
        with self.core.storage.project_tx(project.id) as tx:
            if tx.get_task_type(type_id) is None:
                raise NotFound("Task type not found")
            if tx.task_type_in_use(type_id):
                raise Conflict("Task type is used by queued or running tasks")
            tx.delete_task_type(type_id)
