"""Response schemas: the shapes of what routes answer, dumped from the domain records.

Most of an answer depends on its record alone. One part depends on the moment: a task's
`runAfter` is null once it is due, by the service's clock. That moment reaches the dump as
its context, set by the response decorator around the view and its dump (`dumping_as_of`),
not read from a request global. It is a `ContextVar` of our own, as marshmallow 4 advises
in place of the schema context it removed (its `experimental.context` may still change).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from marshmallow import Schema, fields

from ..archiving import ArchivedTask
from ..models import (
    AttemptStatus,
    DependencyFailure,
    DuplicateHandling,
    ProjectStatus,
    RetryBackoff,
    TaskStatus,
)
from ..times import rfc3339
from .fields import Timestamp

_AS_OF: ContextVar[float | None] = ContextVar("taskdriver_dump_as_of", default=None)


@contextmanager
def dumping_as_of(now: float) -> Iterator[None]:
    """Dump the answers made inside this block as of `now` (POSIX seconds)."""
    token = _AS_OF.set(now)
    try:
        yield
    finally:
        _AS_OF.reset(token)


class RetriedSchema(Schema):
    retried = fields.Int()


class CancelledSchema(Schema):
    cancelled = fields.Int()


class StatsSchema(Schema):
    total_tasks = fields.Int(data_key="totalTasks")
    completed_tasks = fields.Int(data_key="completedTasks")
    failed_tasks = fields.Int(data_key="failedTasks")
    queued_tasks = fields.Int(data_key="queuedTasks")
    running_tasks = fields.Int(data_key="runningTasks")
    cancelled_tasks = fields.Int(data_key="cancelledTasks")
    waiting_tasks = fields.Int(data_key="waitingTasks",
                               metadata={"description": "Waiting for a dependency"})
    archived_tasks = fields.Int(data_key="archivedTasks",
                                metadata={"description": "Of the total, how many are "
                                                         "in the archive"})


def stats_of(counts: dict[TaskStatus, int], archived: int = 0) -> dict[str, int]:
    """Task counts by status (archived tasks included) in the shape of `StatsSchema`."""
    return {"total_tasks": sum(counts.values()), "archived_tasks": archived,
            "completed_tasks": counts[TaskStatus.COMPLETED],
            "failed_tasks": counts[TaskStatus.FAILED],
            "queued_tasks": counts[TaskStatus.QUEUED],
            "running_tasks": counts[TaskStatus.RUNNING],
            "cancelled_tasks": counts[TaskStatus.CANCELLED],
            "waiting_tasks": counts[TaskStatus.WAITING]}


class ProjectConfigSchema(Schema):
    default_max_retries = fields.Int(data_key="defaultMaxRetries")
    default_lease_duration_minutes = fields.Float(data_key="defaultLeaseDurationMinutes")
    reaper_interval_minutes = fields.Float(data_key="reaperIntervalMinutes")
    archive_after_days = fields.Float(data_key="archiveAfterDays")
    delete_archived_after_days = fields.Float(data_key="deleteArchivedAfterDays",
                                              allow_none=True)


class ProjectSchema(Schema):
    """Dumps a `service.ProjectView`."""

    id = fields.Str(attribute="project.id")
    name = fields.Str(attribute="project.name")
    description = fields.Str(attribute="project.description")
    instructions = fields.Str(attribute="project.instructions")
    status = fields.Enum(ProjectStatus, by_value=True, attribute="project.status")
    created_at = Timestamp(data_key="createdAt", attribute="project.created_at")
    updated_at = Timestamp(data_key="updatedAt", attribute="project.updated_at")
    config = fields.Nested(ProjectConfigSchema, attribute="project.config")
    paused = fields.Bool(attribute="project.paused")
    stats = fields.Function(lambda view: StatsSchema().dump(stats_of(view.counts,
                                                                     view.archived)),
                            metadata={"type": "object"})


class RateLimitSchema(Schema):
    count = fields.Int()
    per_seconds = fields.Float(data_key="perSeconds")


class TaskTypeSchema(Schema):
    id = fields.Str()
    project_id = fields.Str(data_key="projectId")
    name = fields.Str()
    template = fields.Str(allow_none=True)
    variables = fields.List(fields.Str())
    duplicate_handling = fields.Enum(DuplicateHandling, by_value=True,
                                     data_key="duplicateHandling")
    max_retries = fields.Int(data_key="maxRetries", allow_none=True)
    lease_duration_minutes = fields.Float(data_key="leaseDurationMinutes", allow_none=True)
    priority = fields.Int()
    retry_delay_seconds = fields.Float(data_key="retryDelaySeconds")
    retry_backoff = fields.Enum(RetryBackoff, by_value=True, data_key="retryBackoff")
    max_retry_delay_seconds = fields.Float(data_key="maxRetryDelaySeconds")
    max_concurrent = fields.Int(data_key="maxConcurrent", allow_none=True)
    rate_limit = fields.Nested(RateLimitSchema, data_key="rateLimit", allow_none=True)
    paused = fields.Bool()
    created_at = Timestamp(data_key="createdAt")
    updated_at = Timestamp(data_key="updatedAt")


class AttemptSchema(Schema):
    id = fields.Str()
    agent_name = fields.Str(data_key="agentName")
    started_at = Timestamp(data_key="startedAt")
    ended_at = Timestamp(data_key="endedAt", allow_none=True)
    status = fields.Enum(AttemptStatus, by_value=True)
    result = fields.Raw(allow_none=True)
    error = fields.Str(allow_none=True)


class TaskSchema(Schema):
    id = fields.Str()
    project_id = fields.Str(data_key="projectId")
    type_id = fields.Str(data_key="typeId", allow_none=True)
    instructions = fields.Str()
    variables = fields.Dict(keys=fields.Str(), values=fields.Str())
    batch_id = fields.Str(data_key="batchId", allow_none=True)
    description = fields.Str(allow_none=True)
    priority = fields.Int()
    run_after = fields.Method("_run_after", data_key="runAfter", allow_none=True,
                              metadata={"type": "string", "format": "date-time",
                                        "description": "When it comes due; null when due"})
    status = fields.Enum(TaskStatus, by_value=True)
    assigned_to = fields.Str(data_key="assignedTo", allow_none=True)
    assigned_at = Timestamp(data_key="assignedAt", allow_none=True)
    lease_expires_at = Timestamp(data_key="leaseExpiresAt", allow_none=True)
    retry_count = fields.Int(data_key="retryCount")
    max_retries = fields.Int(data_key="maxRetries")
    result = fields.Raw(allow_none=True)
    outputs = fields.Raw(allow_none=True)
    error = fields.Str(allow_none=True)
    attempts = fields.List(fields.Nested(AttemptSchema))
    created_at = Timestamp(data_key="createdAt")
    updated_at = Timestamp(data_key="updatedAt")
    completed_at = Timestamp(data_key="completedAt", allow_none=True)
    progress = fields.Float(allow_none=True)
    progress_message = fields.Str(data_key="progressMessage", allow_none=True)
    progress_at = Timestamp(data_key="progressAt", allow_none=True)
    depends_on = fields.List(fields.Str(), data_key="dependsOn")
    depends_on_batch = fields.Str(data_key="dependsOnBatch", allow_none=True)
    on_dependency_failure = fields.Enum(DependencyFailure, by_value=True,
                                        data_key="onDependencyFailure")
    archived = fields.Function(lambda task: isinstance(getattr(task, "task", task),
                                                       ArchivedTask),
                               metadata={"type": "boolean",
                                         "description": "Read from the project's archive"})

    def _run_after(self, task: Any) -> str | None:
        """`runAfter` while the task waits for its moment, null once it is due (as of the
        moment `dumping_as_of` gives; without one, always the moment)."""
        if task.run_after is None:
            return None
        now = _AS_OF.get()
        if now is not None and task.run_after <= now:
            return None
        return rfc3339(task.run_after)


class DependencySchema(Schema):
    """One task a task depends on, as its agent reads it."""

    id = fields.Str()
    status = fields.Enum(TaskStatus, by_value=True)
    result = fields.Raw(allow_none=True)
    outputs = fields.Raw(allow_none=True)


class BatchSummarySchema(Schema):
    batch_id = fields.Str(data_key="batchId")
    total = fields.Int()
    completed = fields.Int()
    failed = fields.Int()
    cancelled = fields.Int()


class TaskDetailSchema(TaskSchema):
    """Dumps a `dependencies.TaskDetail`: the task, what it waits for, what waits for it."""

    dependencies = fields.List(fields.Nested(DependencySchema), metadata={
        "description": "Its dependsOn tasks as they are now"})
    dependency_batch = fields.Nested(BatchSummarySchema, attribute="batch",
                                     data_key="dependencyBatch", allow_none=True, metadata={
                                         "description": "Its dependsOnBatch batch's counts"})
    dependents = fields.List(fields.Str(), metadata={
        "description": "Ids of the tasks that depend on it (or on its batch); empty in a "
                       "lease"})


class SessionSchema(Schema):
    session_id = fields.Str(data_key="sessionId")
    role = fields.Str()
    agent_name = fields.Str(data_key="agentName", allow_none=True)
    project_id = fields.Str(data_key="projectId", allow_none=True)
    created_at = Timestamp(data_key="createdAt", allow_none=True)
    expires_at = Timestamp(data_key="expiresAt", allow_none=True)
    last_activity = Timestamp(data_key="lastActivity", allow_none=True)


class LoginSchema(Schema):
    resumed = fields.Bool(metadata={"description": "Whether an existing session continues"})
    session_id = fields.Str(data_key="sessionId")
    token = fields.Str()
    expires_at = Timestamp(data_key="expiresAt")
    agent_name = fields.Str(data_key="agentName")
    project_id = fields.Str(data_key="projectId")


class LogoutSchema(Schema):
    logged_out = fields.Bool(data_key="loggedOut")


class DeletedSchema(Schema):
    id = fields.Str()
    deleted = fields.Bool()


class RecentActivitySchema(Schema):
    tasks_completed_last_hour = fields.Int(data_key="tasksCompletedLastHour")
    tasks_failed_last_hour = fields.Int(data_key="tasksFailedLastHour")
    average_task_duration = fields.Float(data_key="averageTaskDuration",
                                         metadata={"description": "Seconds"})


class StatsProjectSchema(Schema):
    id = fields.Str()
    name = fields.Str()
    stats = fields.Nested(StatsSchema)


class ProjectStatsSchema(Schema):
    project = fields.Nested(StatsProjectSchema)
    queue_depth = fields.Int(data_key="queueDepth")
    delayed_tasks = fields.Int(data_key="delayedTasks",
                               metadata={"description": "Queued but not yet due"})
    active_agents = fields.Int(data_key="activeAgents")
    recent_activity = fields.Nested(RecentActivitySchema, data_key="recentActivity")


class BulkResultSchema(Schema):
    tasks_created = fields.Int(data_key="tasksCreated")
    duplicates = fields.Int()
    errors = fields.List(fields.Dict())
    created_tasks = fields.List(fields.Nested(TaskSchema), data_key="createdTasks")


def _count_of(status: TaskStatus) -> fields.Function:
    return fields.Function(lambda progress: progress.counts[status], metadata={"type": "integer"})


class BatchSchema(Schema):
    """Dumps a `models.BatchProgress`."""

    batch_id = fields.Str(data_key="batchId")
    total = fields.Function(lambda progress: sum(progress.counts.values()),
                            metadata={"type": "integer"})
    queued = _count_of(TaskStatus.QUEUED)
    running = _count_of(TaskStatus.RUNNING)
    completed = _count_of(TaskStatus.COMPLETED)
    failed = _count_of(TaskStatus.FAILED)
    cancelled = _count_of(TaskStatus.CANCELLED)
    waiting = _count_of(TaskStatus.WAITING)
    done = fields.Bool()


class AgentLeaseSchema(Schema):
    agent_name = fields.Str(data_key="agentName")
    task_id = fields.Str(data_key="taskId", attribute="task.id")
    assigned_at = Timestamp(data_key="assignedAt", attribute="task.assigned_at")
    lease_expires_at = Timestamp(data_key="leaseExpiresAt", attribute="task.lease_expires_at")
    status = fields.Str(attribute="task.status.value")


class PeekSchema(Schema):
    project_id = fields.Str(data_key="projectId")
    tasks_available = fields.Int(data_key="tasksAvailable")


class LeaseProjectSchema(Schema):
    """The project of a leased task: its instructions apply to every task in it."""

    id = fields.Str()
    name = fields.Str()
    instructions = fields.Str()


class NextTaskSchema(Schema):
    """The reference's `{task, agentName}`, plus the task's `id` on top, so that the
    reference's own client snippets (`task['id']` on what they return) work as printed,
    and the task's `project` with the instructions the agent reads before the task's."""

    id = fields.Str(attribute="task.id", metadata={"description": "Same as task.id"})
    task = fields.Nested(TaskDetailSchema, allow_none=True)
    agent_name = fields.Str(data_key="agentName")
    project = fields.Nested(LeaseProjectSchema, allow_none=True)


class ReclaimSchema(Schema):
    reclaimed_tasks = fields.Int(data_key="reclaimedTasks", attribute="tasks")
    cleaned_agents = fields.Int(data_key="cleanedAgents", attribute="agents")


class StorageHealthSchema(Schema):
    healthy = fields.Bool()
    provider = fields.Str()


class HealthSchema(Schema):
    status = fields.Str()
    timestamp = Timestamp()
    uptime = fields.Float(metadata={"description": "Seconds since this worker started"})
    version = fields.Str()
    storage = fields.Nested(StorageHealthSchema)


class SystemUsageSchema(Schema):
    memory_usage = fields.Float(metadata={"description": "Resident MB of this worker"})
    cpu_usage = fields.Float(metadata={"description": "CPU % of this worker since the "
                                                      "previous call"})
    uptime = fields.Float(metadata={"description": "Seconds since this worker started"})


class MetricsJsonSchema(Schema):
    requests_total = fields.Int()
    requests_success = fields.Int()
    requests_error = fields.Int()
    response_time_avg = fields.Float(metadata={"description": "Milliseconds"})
    active_sessions = fields.Int()
    system = fields.Nested(SystemUsageSchema)
