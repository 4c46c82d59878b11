"""The lease queue: next task, outcomes, lease extension, reclaim, and who is working."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from .blueprint import Blueprint
from .context import driver, ok, principal
from .envelope import envelope
from .requests import (
    CompleteArgs,
    ExtendLeaseArgs,
    FailArgs,
    NextTaskArgs,
    ReleaseArgs,
    validate_agent_name,
)
from .responses import AgentLeaseSchema, NextTaskSchema, PeekSchema, ReclaimSchema, TaskSchema

blp = Blueprint("queue", __name__, url_prefix="/api",
                description="Leasing tasks to agents and recording outcomes")

NO_TASK_MESSAGE = "No tasks available for assignment"


@blp.route("/agents/<string:agent_name>/next-task", methods=["POST"])
@blp.arguments(NextTaskArgs, required=False)
@blp.response(200, envelope(NextTaskSchema))
def next_task(args: dict[str, Any], agent_name: str) -> dict[str, Any]:
    """Resume the agent's lease or lease the oldest queued task (`success: false` if none)."""
    validate_agent_name(agent_name)
    lease = driver().next_task(principal(), agent_name, args.get("project_id"),
                               args["wait_seconds"])
    if lease is None:
        body = ok({"task": None, "agent_name": agent_name})
        body.update(success=False, error=NO_TASK_MESSAGE)
    else:
        body = ok({"task": lease.detail or lease.task, "agent_name": agent_name,
                   "project": lease.project})
    return body


@blp.route("/projects/<uuid:project_id>/peek-next-task")
@blp.response(200, envelope(PeekSchema))
def peek_next_task(project_id: UUID) -> dict[str, Any]:
    """How many tasks an agent could be given now, without leasing any."""
    available = driver().peek(principal(), str(project_id))
    return ok({"project_id": str(project_id), "tasks_available": available})


@blp.route("/projects/<uuid:project_id>/agents")
@blp.response(200, envelope(AgentLeaseSchema, many=True))
def list_active_agents(project_id: UUID) -> dict[str, Any]:
    """Agents holding an unexpired lease in the project."""
    return ok(driver().agents(principal(), str(project_id)))


@blp.route("/projects/<uuid:project_id>/cleanup-leases", methods=["POST"])
@blp.response(200, envelope(ReclaimSchema))
def cleanup_leases(project_id: UUID) -> dict[str, Any]:
    """Reclaim the project's expired leases now."""
    return ok(driver().reap_project(principal(), str(project_id)))


@blp.route("/tasks/<uuid:task_id>/complete", methods=["POST"])
@blp.arguments(CompleteArgs, required=False)
@blp.response(200, envelope(TaskSchema))
def complete_task(args: dict[str, Any], task_id: UUID) -> dict[str, Any]:
    """Record the holder's result and outputs; repeating it is harmless."""
    return ok(driver().complete_task(principal(), str(task_id), args.get("agent_name"),
                                     args.get("result"), args.get("outputs")))


@blp.route("/tasks/<uuid:task_id>/fail", methods=["POST"])
@blp.arguments(FailArgs)
@blp.response(200, envelope(TaskSchema))
def fail_task(args: dict[str, Any], task_id: UUID) -> dict[str, Any]:
    """Record the holder's failure: requeued while retries remain and `canRetry`."""
    return ok(driver().fail_task(principal(), str(task_id), args.get("agent_name"),
                                 args["error"], args["can_retry"]))


@blp.route("/tasks/<uuid:task_id>/release", methods=["POST"])
@blp.arguments(ReleaseArgs, required=False)
@blp.response(200, envelope(TaskSchema))
def release_task(args: dict[str, Any], task_id: UUID) -> dict[str, Any]:
    """Give the holder's task back to the queue untouched: no attempt, no retry spent."""
    return ok(driver().release_task(principal(), str(task_id), args.get("agent_name")))


@blp.route("/tasks/<uuid:task_id>/extend-lease", methods=["POST"])
@blp.arguments(ExtendLeaseArgs)
@blp.response(200, envelope(TaskSchema))
def extend_lease(args: dict[str, Any], task_id: UUID) -> dict[str, Any]:
    """Extend the holder's lease by `extensionMinutes`."""
    return ok(driver().extend_lease(principal(), str(task_id), args.get("agent_name"),
                                    args["extension_minutes"]))
