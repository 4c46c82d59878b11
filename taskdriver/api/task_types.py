"""Task types: prompt templates with their retry, lease and duplicate rules."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from ..inputs import TaskTypeSpec
from ..models import DuplicateHandling, RateLimit, RetryBackoff
from .blueprint import Blueprint
from .context import driver, idempotency, ok, page, principal
from .envelope import envelope
from .requests import (
    IDEMPOTENCY_KEY_PARAMETER,
    TaskTypeCreateArgs,
    TaskTypeListArgs,
    TaskTypeUpdateArgs,
)
from .responses import DeletedSchema, TaskTypeSchema

blp = Blueprint("task_types", __name__, url_prefix="/api",
                description="Task types: templates and queue rules for tasks")


def _spec(args: dict[str, Any]) -> TaskTypeSpec:
    variables = args.get("variables")
    duplicates = args.get("duplicate_handling")
    backoff = args.get("retry_backoff")
    rate_limit = args.get("rate_limit")
    return TaskTypeSpec(
        name=args.get("name"), template=args.get("template"),
        variables=None if variables is None else tuple(variables),
        duplicate_handling=None if duplicates is None else DuplicateHandling(duplicates),
        max_retries=args.get("max_retries"),
        lease_duration_minutes=args.get("lease_duration_minutes"),
        priority=args.get("priority"), retry_delay_seconds=args.get("retry_delay_seconds"),
        retry_backoff=None if backoff is None else RetryBackoff(backoff),
        max_retry_delay_seconds=args.get("max_retry_delay_seconds"),
        max_concurrent=args.get("max_concurrent"),
        rate_limit=None if rate_limit is None else RateLimit(**rate_limit),
        paused=args.get("paused"))


@blp.route("/projects/<uuid:project_id>/task-types")
class TaskTypesView(MethodView):
    @blp.arguments(TaskTypeListArgs, location="query")
    @blp.response(200, envelope(TaskTypeSchema, many=True, paginated=True))
    def get(self, args: dict[str, Any], project_id: UUID) -> dict[str, Any]:
        """List a project's task types, oldest first."""
        task_types, total = driver().list_task_types(principal(), str(project_id),
                                                     args["limit"], args["offset"])
        return page(task_types, total, args["limit"], args["offset"])

    @blp.arguments(TaskTypeCreateArgs)
    @blp.response(201, envelope(TaskTypeSchema))
    @blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    def post(self, args: dict[str, Any], project_id: UUID) -> dict[str, Any]:
        """Create a task type; `variables` default to the template's placeholders."""
        return ok(driver().create_task_type(principal(), str(project_id), _spec(args),
                                            idempotency()))


@blp.route("/task-types/<uuid:type_id>")
class TaskTypeView(MethodView):
    @blp.response(200, envelope(TaskTypeSchema))
    def get(self, type_id: UUID) -> dict[str, Any]:
        """Read a task type."""
        return ok(driver().get_task_type(principal(), str(type_id)))

    @blp.arguments(TaskTypeUpdateArgs, required=False)
    @blp.response(200, envelope(TaskTypeSchema))
    def put(self, args: dict[str, Any], type_id: UUID) -> dict[str, Any]:
        """Change some fields of a task type (existing tasks keep theirs)."""
        return ok(driver().update_task_type(principal(), str(type_id), _spec(args),
                                            set(args)))

    @blp.response(200, envelope(DeletedSchema))
    def delete(self, type_id: UUID) -> dict[str, Any]:
        """Delete a task type no queued or running task uses."""
        driver().delete_task_type(principal(), str(type_id))
        return ok({"id": str(type_id), "deleted": True})
