"""Task tools: create tasks one by one or in bulk, find them, follow batches, retry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ...client import Client
from .. import results
from ..registry import ADDS, ENDS, JSON_TEXT, READS, Arguments, ToolRefusal, Tools
from .common import BatchRef, Limit, MaybeBatchRef, MaybeTypeRef, Offset, ProjectRef, TaskRef

tools = Tools()
MAX_BULK = 1000


class TaskFields(Arguments):
    """One task to create: a template type with its variables, or plain instructions."""

    typeId: MaybeTypeRef = None
    instructions: str | None = Field(None, description="What the agent should do (when the "
                                                       "type has no template).")
    variables: Annotated[dict[str, str] | None, JSON_TEXT] = Field(
        None, description="Values of the type's template variables, by name.")
    description: str | None = Field(None, description="A note for people; agents get the "
                                                      "instructions.")
    batchId: MaybeBatchRef = None
    priority: int | None = Field(None, description="Higher is leased first (default: the "
                                                   "type's).")
    delaySeconds: float | None = Field(None, ge=0, description="Not leased before this many "
                                                               "seconds from now.")
    runAfter: str | None = Field(None, description="Not leased before this moment (RFC 3339).")
    dependsOn: Annotated[list[str] | None, JSON_TEXT] = Field(
        None, max_length=100, description="Ids of tasks of the project it waits for: it is "
                                          "'waiting', never leased, until they finish.")
    dependsOnBatch: str | None = Field(None, description="A batch whose every task it waits "
                                                         "for.")
    onDependencyFailure: Literal["fail", "run"] | None = Field(
        None, description="If a dependency fails: fail this task too (default) or run it.")


class CreateTask(TaskFields):
    projectId: ProjectRef


@tools.tool(CreateTask, results.Task, ADDS)
def create_task(client: Client, args: CreateTask) -> Any:
    """Create one task; with a template type give its variables, else instructions.
    priority: higher first; delaySeconds or runAfter (RFC 3339): not before then;
    dependsOn / dependsOnBatch: waiting until those tasks finish (map, then reduce)."""
    type_id = client.task_type_id(args.projectId, args.typeId) if args.typeId else None
    return client.create_task(
        args.projectId, instructions=args.instructions, type_id=type_id,
        variables=args.variables, batch_id=args.batchId, description=args.description,
        priority=args.priority, delay_seconds=args.delaySeconds, run_after=args.runAfter,
        depends_on=args.dependsOn, depends_on_batch=args.dependsOnBatch,
        on_dependency_failure=args.onDependencyFailure)


class CreateTasksBulk(Arguments):
    projectId: ProjectRef
    tasks: Annotated[list[TaskFields], JSON_TEXT] = Field(
        description=f"Up to {MAX_BULK:,} tasks, each created or refused on its own.")
    batchId: str | None = Field(None, description="A batch id for every task that names "
                                                  "none.")


@tools.tool(CreateTasksBulk, results.BulkResult, ADDS)
def create_tasks_bulk(client: Client, args: CreateTasksBulk) -> Any:
    """Create up to 1,000 tasks at once (each as for create_task, without projectId);
    each is created or refused on its own."""
    if len(args.tasks) > MAX_BULK:
        raise ToolRefusal(f"tasks: at most {MAX_BULK:,} per call, got {len(args.tasks):,}")
    type_ids: dict[str, str] = {}
    items = []
    for task in args.tasks:
        item = task.model_dump(exclude_none=True)
        if task.typeId:
            if task.typeId not in type_ids:
                type_ids[task.typeId] = client.task_type_id(args.projectId, task.typeId)
            item["typeId"] = type_ids[task.typeId]
        items.append(item)
    return client.create_tasks_bulk(args.projectId, items, args.batchId)


class ListTasks(Arguments):
    projectId: ProjectRef
    status: Literal["queued", "running", "completed", "failed", "cancelled", "waiting",
                    "all"] | None = Field(
        None, description="Only tasks with this status (all, or leave out, for every one).")
    typeId: MaybeTypeRef = None
    assignedTo: str | None = Field(None, description="Only tasks last leased by this agent.")
    batchId: MaybeBatchRef = None
    limit: Limit = 50
    offset: Offset = 0


@tools.tool(ListTasks, results.TaskPage, READS)
def list_tasks(client: Client, args: ListTasks) -> Any:
    """List a project's tasks oldest first, filtered by status, type, agent or batch."""
    type_id = client.task_type_id(args.projectId, args.typeId) if args.typeId else None
    return client.list_tasks(
        args.projectId, status=None if args.status == "all" else args.status,
        assigned_to=args.assignedTo, batch_id=args.batchId, type_id=type_id,
        limit=args.limit, offset=args.offset)


class OneTask(Arguments):
    taskId: TaskRef


@tools.tool(OneTask, results.Task, READS)
def get_task(client: Client, args: OneTask) -> Any:
    """A task with its instructions, variables, result and every attempt."""
    return client.get_task(args.taskId)


class OneBatch(Arguments):
    projectId: ProjectRef
    batchId: BatchRef


@tools.tool(OneBatch, results.Batch, READS)
def get_batch_status(client: Client, args: OneBatch) -> Any:
    """A batch's counts by status, and whether it is done."""
    return client.batch_status(args.projectId, args.batchId)


@tools.tool(OneTask, results.Task, ADDS)
def retry_task(client: Client, args: OneTask) -> Any:
    """Send a failed task back to the queue with a fresh retry budget (operators only)."""
    return client.retry_task(args.taskId)


class RetryFailed(Arguments):
    projectId: ProjectRef
    batchId: str | None = Field(None, description="Only the failed tasks of this batch.")
    typeId: MaybeTypeRef = None


@tools.tool(RetryFailed, results.Retried, ADDS)
def retry_failed_tasks(client: Client, args: RetryFailed) -> Any:
    """Send every failed task of a project (of a batch, of a type) back to the queue
    with a fresh retry budget (operators only)."""
    type_id = client.task_type_id(args.projectId, args.typeId) if args.typeId else None
    return {"retried": client.retry_failed(args.projectId, args.batchId, type_id)}


class CancelTask(Arguments):
    taskId: TaskRef
    reason: str | None = Field(None, max_length=1000, description="Why; kept in the task's "
                                                                  "error.")


@tools.tool(CancelTask, results.Task, ENDS)
def cancel_task(client: Client, args: CancelTask) -> Any:
    """End a queued or running task for good (status cancelled; operators only); its
    agent's later reports are refused."""
    return client.cancel_task(args.taskId, args.reason)


class CancelTasks(Arguments):
    projectId: ProjectRef
    batchId: str | None = Field(None, description="Only the tasks of this batch.")
    typeId: MaybeTypeRef = None
    status: Literal["queued", "running"] | None = Field(
        None, description="Only queued or only running tasks (leave out for both).")


@tools.tool(CancelTasks, results.Cancelled, ENDS)
def cancel_tasks(client: Client, args: CancelTasks) -> Any:
    """Cancel every unfinished task of a project (of a batch, a type, a status) at once
    (operators only)."""
    type_id = client.task_type_id(args.projectId, args.typeId) if args.typeId else None
    return {"cancelled": client.cancel_tasks(args.projectId, args.batchId, type_id,
                                             args.status)}
