"""The fleet controls' routes: cancel a task or many, and a holder's progress report.

Limits and pauses are fields of the task type and project routes; what they mean is
`controls.py`'s, applied by the service.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ..models import TaskStatus
from .blueprint import Blueprint
from .context import driver, ok, principal
from .envelope import envelope
from .operator_only import operator_only
from .requests import CancelArgs, CancelTasksArgs, ProgressArgs
from .responses import CancelledSchema, TaskSchema

blp = Blueprint("controls", __name__, url_prefix="/api",
                description="Fleet controls: cancelling tasks, reporting progress")


@blp.route("/tasks/<uuid:task_id>/cancel", methods=["POST"])
@operator_only("cancel tasks")
@blp.arguments(CancelArgs, required=False)
@blp.response(200, envelope(TaskSchema))
def cancel_task(args: dict[str, Any], task_id: UUID) -> dict[str, Any]:
    """End a queued or running task for good (`cancelled`); 409 if it already finished."""
    return ok(driver().cancel_task(principal(), str(task_id), args.get("reason")))


@blp.route("/projects/<uuid:project_id>/tasks/cancel", methods=["POST"])
@operator_only("cancel tasks")
@blp.arguments(CancelTasksArgs, required=False)
@blp.response(200, envelope(CancelledSchema))
def cancel_tasks(args: dict[str, Any], project_id: UUID) -> dict[str, Any]:
    """Cancel every unfinished task of the project (of a batch, a type, a status) at once."""
    type_id = args.get("type_id")
    status = args.get("status")
    cancelled = driver().cancel_tasks(principal(), str(project_id), args.get("batch_id"),
                                      str(type_id) if type_id else None,
                                      TaskStatus(status) if status else None)
    return ok({"cancelled": cancelled})


@blp.route("/tasks/<uuid:task_id>/progress", methods=["POST"])
@blp.arguments(ProgressArgs)
@blp.response(200, envelope(TaskSchema))
def report_progress(args: dict[str, Any], task_id: UUID) -> dict[str, Any]:
    """The holder reports how far it got (and may extend its lease)."""
    return ok(driver().report_progress(principal(), str(task_id), args.get("agent_name"),
                                       args.get("progress"), args.get("message"),
                                       args.get("extension_minutes")))
