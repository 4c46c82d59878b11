"""Tasks: create (one or in bulk), list, read, update, delete, retry, and batch progress."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView
from marshmallow import ValidationError

from ..answers import ItemError, TaskFilter
from ..inputs import TaskSpec
from ..models import DependencyFailure, TaskStatus
from .blueprint import Blueprint
from .context import driver, idempotency, ok, page, principal
from .envelope import envelope
from .errors import validation_details, validation_message
from .loading import compile_load
from .operator_only import operator_only
from .requests import (
    IDEMPOTENCY_KEY_PARAMETER,
    BatchListArgs,
    BulkTaskArgs,
    RetryFailedArgs,
    TaskArgs,
    TaskListArgs,
    TaskUpdateArgs,
)
from .responses import (
    BatchSchema,
    BulkResultSchema,
    DeletedSchema,
    RetriedSchema,
    TaskDetailSchema,
    TaskSchema,
)

blp = Blueprint("tasks", __name__, url_prefix="/api", description="Tasks and batches")
# Each bulk item loaded like a single create's body, without Schema.load's bookkeeping.
LOAD_BULK_ITEM = compile_load(TaskArgs())


def _spec(args: dict[str, Any]) -> TaskSpec:
    type_id = args.get("type_id")
    run_after = args.get("run_after")
    policy = args.get("on_dependency_failure")
    return TaskSpec(type_id=str(type_id) if type_id else None,
                    instructions=args.get("instructions"), variables=args.get("variables"),
                    batch_id=args.get("batch_id"), description=args.get("description"),
                    priority=args.get("priority"), delay_seconds=args.get("delay_seconds"),
                    run_after=run_after.timestamp() if run_after is not None else None,
                    depends_on=tuple(args.get("depends_on") or ()),
                    depends_on_batch=args.get("depends_on_batch"),
                    on_dependency_failure=DependencyFailure(policy) if policy else None)


@blp.route("/projects/<uuid:project_id>/tasks")
class TasksView(MethodView):
    @blp.arguments(TaskListArgs, location="query")
    @blp.response(200, envelope(TaskSchema, many=True, paginated=True))
    def get(self, args: dict[str, Any], project_id: UUID) -> dict[str, Any]:
        """List tasks oldest first, filtered by status, agent, batch or type; with
        `archived=true`, the project's archive (oldest archived first)."""
        task_filter = TaskFilter(
            status=TaskStatus(args["status"]) if "status" in args else None,
            assigned_to=args.get("assigned_to"), batch_id=args.get("batch_id"),
            type_id=str(args["type_id"]) if "type_id" in args else None)
        tasks, total = driver().list_tasks(principal(), str(project_id), task_filter,
                                           args["limit"], args["offset"],
                                           archived=args["archived"])
        return page(tasks, total, args["limit"], args["offset"])

    @blp.arguments(TaskArgs)
    @blp.response(201, envelope(TaskSchema))
    @blp.alt_response(200, schema=envelope(TaskSchema),
                      description="An identical task exists and the type ignores duplicates")
    @blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    def post(self, args: dict[str, Any], project_id: UUID) -> Any:
        """Create a task; a template type renders its instructions from the variables."""
        task, created = driver().create_task(principal(), str(project_id), _spec(args),
                                             idempotency())
        return ok(task), 201 if created else 200


@blp.route("/projects/<uuid:project_id>/tasks/bulk", methods=["POST"])
@blp.arguments(BulkTaskArgs)
@blp.response(201, envelope(BulkResultSchema))
@blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
def create_tasks(args: dict[str, Any], project_id: UUID) -> dict[str, Any]:
    """Create up to 1,000 tasks in one commit; each item is created or refused on its own."""
    items: list[tuple[int, TaskSpec]] = []
    refused: list[ItemError] = []
    for index, (raw, item) in enumerate(_load_items(args["tasks"])):
        if isinstance(item, ValidationError):
            details = validation_details(item.messages, raw)
            refused.append(ItemError(index, validation_message(details), details))
            continue
        if "batch_id" not in item:
            item["batch_id"] = args.get("batch_id")
        items.append((index, _spec(item)))
    outcome = driver().create_tasks(principal(), str(project_id), items, idempotency())
    return ok({"tasks_created": len(outcome.created), "duplicates": outcome.duplicates,
               "errors": [_item_error(e) for e in sorted(refused + outcome.errors,
                                                         key=lambda e: e.index)],
               "created_tasks": outcome.created})


def _item_error(error: ItemError) -> dict[str, Any]:
    """A refused bulk item (by the schema or by the service) in the answer's shape, a field
    error's details as `validationDetails`."""
    shaped: dict[str, Any] = {"index": error.index, "error": error.message}
    if error.details is not None:
        shaped["validationDetails"] = error.details
    return shaped


def _load_items(raws: list[Any]) -> list[tuple[Any, dict[str, Any] | ValidationError]]:
    """Each bulk item loaded, or the error that refuses it."""
    loaded: list[tuple[Any, dict[str, Any] | ValidationError]] = []
    for raw in raws:
        try:
            loaded.append((raw, LOAD_BULK_ITEM(raw)))
        except ValidationError as exc:
            loaded.append((raw, exc))
    return loaded


@blp.route("/tasks/<uuid:task_id>")
class TaskView(MethodView):
    @blp.response(200, envelope(TaskDetailSchema))
    def get(self, task_id: UUID) -> dict[str, Any]:
        """Read a task with its attempt history, its dependencies and its dependents."""
        return ok(driver().task_detail(principal(), str(task_id)))

    @blp.arguments(TaskUpdateArgs, required=False)
    @blp.response(200, envelope(TaskSchema))
    def put(self, args: dict[str, Any], task_id: UUID) -> dict[str, Any]:
        """Change a queued task's instructions, variables or batch."""
        return ok(driver().update_task(principal(), str(task_id), _spec(args),
                                       given=set(args)))

    @blp.response(200, envelope(DeletedSchema))
    def delete(self, task_id: UUID) -> dict[str, Any]:
        """Delete a task that is not running."""
        driver().delete_task(principal(), str(task_id))
        return ok({"id": str(task_id), "deleted": True})


@blp.route("/projects/<uuid:project_id>/tasks/retry", methods=["POST"])
@operator_only("retry failed tasks")
@blp.arguments(RetryFailedArgs, required=False)
@blp.response(200, envelope(RetriedSchema))
def retry_failed_tasks(args: dict[str, Any], project_id: UUID) -> dict[str, Any]:
    """Requeue every failed task of the project (or of a batch or type) with a fresh retry
    budget (operators only)."""
    type_id = args.get("type_id")
    retried = driver().retry_failed(principal(), str(project_id), args.get("batch_id"),
                                    str(type_id) if type_id else None)
    return ok({"retried": retried})


@blp.route("/tasks/<uuid:task_id>/retry", methods=["POST"])
@operator_only("retry failed tasks")
@blp.response(200, envelope(TaskSchema))
def retry_task(task_id: UUID) -> dict[str, Any]:
    """Requeue a failed task with a fresh retry budget (operators only)."""
    return ok(driver().retry_task(principal(), str(task_id)))


@blp.route("/projects/<uuid:project_id>/batches")
@blp.arguments(BatchListArgs, location="query")
@blp.response(200, envelope(BatchSchema, many=True, paginated=True))
def list_batches(args: dict[str, Any], project_id: UUID) -> dict[str, Any]:
    """The project's batches in order of first use, each with its progress."""
    batches, total = driver().list_batches(principal(), str(project_id), args["limit"],
                                           args["offset"])
    return page(batches, total, args["limit"], args["offset"])


@blp.route("/projects/<uuid:project_id>/batches/<string:batch_id>")
@blp.response(200, envelope(BatchSchema))
def get_batch_status(project_id: UUID, batch_id: str) -> dict[str, Any]:
    """Progress of a batch: counts by status, `done` when nothing is queued or running."""
    return ok(driver().batch_progress(principal(), str(project_id), batch_id))
