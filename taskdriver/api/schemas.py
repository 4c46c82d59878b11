"""Marshmallow schemas: request validation, response shapes, and the OpenAPI document.

Request schemas load camelCase JSON into snake_case keyword arguments for the service;
response schemas dump the domain records. flask-smorest documents both from here, so the
OpenAPI document cannot drift from what the routes really accept and return.
"""

from __future__ import annotations

from typing import Any

from flask import g, has_app_context
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .. import inputs
from ..config import DEFAULT_LONG_POLL_MAX_SECONDS
from ..models import (
    MAX_DELAY_SECONDS,
    MAX_MINUTES,
    MAX_PRIORITY,
    MAX_RETRIES_LIMIT,
    MIN_MINUTES,
    MIN_PRIORITY,
    AttemptStatus,
    DuplicateHandling,
    ProjectStatus,
    RetryBackoff,
    TaskStatus,
)
from ..templates import VARIABLE_NAME
from ..times import rfc3339

MAX_OFFSET = 2**63 - 1


class WholeMatch(validate.Regexp):
    """A pattern the whole value must match: Python's `$` would let a trailing newline by."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# The name rules and limits are `inputs.py`'s, which the operator CLI checks too.
PROJECT_NAME = WholeMatch(inputs.PROJECT_NAME.pattern, error=inputs.PROJECT_NAME.message)
AGENT_NAME = WholeMatch(inputs.AGENT_NAME.pattern, error=inputs.AGENT_NAME.message)
TASK_TYPE_NAME = WholeMatch(inputs.TASK_TYPE_NAME.pattern, error=inputs.TASK_TYPE_NAME.message)
NAME_LENGTH = validate.Length(min=1, max=inputs.NAME_MAX_LENGTH)
MINUTES = validate.Range(min=MIN_MINUTES, max=MAX_MINUTES)
PRIORITY = validate.Range(min=MIN_PRIORITY, max=MAX_PRIORITY)
DELAY = validate.Range(min=0, max=MAX_DELAY_SECONDS)
RETRIES = validate.Range(min=0, max=MAX_RETRIES_LIMIT)
TEXT_LIMIT = inputs.TEXT_LIMIT


def _text(required: bool = False, max_length: int = TEXT_LIMIT, **kwargs: Any) -> fields.Str:
    return fields.Str(required=required, validate=validate.Length(max=max_length), **kwargs)


class JsonInt(fields.Int):
    """A body integer: a JSON integer only (2.7, 1e-300, "4" and true are refused, not cut)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class JsonNumber(fields.Float):
    """A body number: a JSON number only (a string such as " 4 " is refused, not parsed)."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid")
        return super()._validated(value)


class JsonBool(fields.Bool):
    """A body boolean: JSON true or false only ("yes", 1 and "true" are refused)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _minutes(**kwargs: Any) -> fields.Float:
    return JsonNumber(validate=MINUTES, allow_nan=False, **kwargs)


class Timestamp(fields.Field):
    """POSIX seconds dumped as RFC 3339 UTC with milliseconds and a `Z`."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else rfc3339(value)

    def _jsonschema_type_mapping(self) -> dict[str, str]:
        return {"type": "string", "format": "date-time"}


class StringMap(fields.Dict):
    """A JSON object of string to string (template variables)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(keys=fields.Str(validate=WholeMatch(
            VARIABLE_NAME, error="Variable names are 1-100 letters, numbers or _ . -")),
            values=fields.Str(validate=validate.Length(max=TEXT_LIMIT)), **kwargs)


# -- requests -------------------------------------------------------------------------------

class LoginArgs(Schema):
    agent_name = fields.Str(required=True, data_key="agentName", validate=AGENT_NAME)
    project_id = fields.Str(required=True, data_key="projectId",
                            validate=validate.Length(min=1, max=100),
                            metadata={"description": "The project's id, or its name"})
    agent_key = fields.Str(data_key="agentKey", validate=validate.Length(max=1000))
    resume_existing = JsonBool(
        data_key="resumeExisting", load_default=False,
        metadata={"description": "Continue this agent's live session (same sessionId, "
                                 "expiry extended, a fresh token) instead of a new one"})
    allow_multiple_sessions = JsonBool(
        data_key="allowMultipleSessions", load_default=False,
        metadata={"description": "Keep this agent's other sessions; by default a login "
                                 "ends them (their tokens get 401 at once)"})


class ExtendSessionArgs(Schema):
    extend_by = JsonInt(required=True, data_key="extendBy",
                           validate=validate.Range(min=1, max=86400))


class ProjectConfigArgs(Schema):
    default_max_retries = JsonInt(data_key="defaultMaxRetries", validate=RETRIES)
    default_lease_duration_minutes = _minutes(data_key="defaultLeaseDurationMinutes")
    reaper_interval_minutes = _minutes(data_key="reaperIntervalMinutes")


class ProjectCreateArgs(Schema):
    name = fields.Str(required=True, validate=[NAME_LENGTH, PROJECT_NAME])
    description = _text(load_default="")
    instructions = _text(load_default="")
    config = fields.Nested(ProjectConfigArgs, load_default=dict)


class ProjectUpdateArgs(Schema):
    name = fields.Str(validate=[NAME_LENGTH, PROJECT_NAME])
    description = _text()
    instructions = _text()
    status = fields.Str(validate=validate.OneOf([s.value for s in ProjectStatus]))
    config = fields.Nested(ProjectConfigArgs)


class Paging(Schema):
    # Past 2**63 - 1 an offset is no page of anything, and neither Python's slicing nor
    # a JSON writer of 64-bit integers takes it: a 422 names it.
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET))


class ProjectListArgs(Paging):
    status = fields.Str(load_default="active", validate=validate.OneOf(
        ["active", "closed", "all"]))
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=100))


class BatchListArgs(Paging):
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))


class TaskTypeListArgs(Paging):
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))


class TaskTypeCreateArgs(Schema):
    name = fields.Str(required=True, validate=[NAME_LENGTH, TASK_TYPE_NAME])
    template = _text(allow_none=True)
    variables = fields.List(fields.Str(validate=WholeMatch(
        VARIABLE_NAME, error="Variable names are 1-100 letters, numbers or _ . -")),
        validate=validate.Length(max=1000))
    duplicate_handling = fields.Str(data_key="duplicateHandling", validate=validate.OneOf(
        [d.value for d in DuplicateHandling]))
    max_retries = JsonInt(data_key="maxRetries", validate=RETRIES)
    lease_duration_minutes = _minutes(data_key="leaseDurationMinutes")
    priority = JsonInt(validate=PRIORITY,
                       metadata={"description": "Default priority of its tasks (0)"})
    retry_delay_seconds = JsonNumber(
        data_key="retryDelaySeconds", validate=DELAY,
        metadata={"description": "Wait before a retry after a failure or an expired lease "
                                 "(0: at once)"})
    retry_backoff = fields.Str(data_key="retryBackoff", validate=validate.OneOf(
        [b.value for b in RetryBackoff]), metadata={"description": "fixed, or exponential "
                                                    "(the delay doubles each retry)"})
    max_retry_delay_seconds = JsonNumber(data_key="maxRetryDelaySeconds", validate=DELAY,
                                         metadata={"description": "Cap of the delay (3600)"})


class TaskTypeUpdateArgs(TaskTypeCreateArgs):
    name = fields.Str(validate=[NAME_LENGTH, TASK_TYPE_NAME])


class TaskUpdateArgs(Schema):
    priority = JsonInt(validate=PRIORITY,
                       metadata={"description": "Higher first (-1000 to 1000); default the "
                                                "type's"})
    instructions = _text(allow_none=True)
    variables = StringMap()
    batch_id = fields.Str(data_key="batchId", allow_none=True,
                          validate=validate.Length(min=1, max=200))
    description = _text(allow_none=True, max_length=10_000,
                        metadata={"description": "For people; agents get the instructions"})


class TaskArgs(TaskUpdateArgs):
    type_id = fields.UUID(data_key="typeId", allow_none=True)
    run_after = fields.AwareDateTime(data_key="runAfter", metadata={
        "description": "Not handed out before this moment (RFC 3339)"})
    delay_seconds = JsonNumber(data_key="delaySeconds", validate=DELAY, metadata={
        "description": "Not handed out for this many seconds"})

    @validates_schema
    def _one_start(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "run_after" in data and "delay_seconds" in data:
            raise ValidationError("Give runAfter or delaySeconds, not both", "delaySeconds")


class RetryFailedArgs(Schema):
    batch_id = fields.Str(data_key="batchId", validate=validate.Length(min=1, max=200),
                          metadata={"description": "Only this batch's failed tasks"})
    type_id = fields.UUID(data_key="typeId",
                          metadata={"description": "Only this task type's failed tasks"})


class RetriedSchema(Schema):
    retried = fields.Int()


class BulkTaskArgs(Schema):
    tasks = fields.List(fields.Dict(), required=True,
                        validate=validate.Length(min=1, max=1000),
                        metadata={"description": "Task bodies as for a single create; each "
                                                 "is validated and created on its own"})
    batch_id = fields.Str(data_key="batchId", allow_none=True,
                          validate=validate.Length(min=1, max=200))


class TaskListArgs(Paging):
    status = fields.Str(validate=validate.OneOf([s.value for s in TaskStatus]))
    assigned_to = fields.Str(data_key="assignedTo", validate=validate.Length(max=100))
    batch_id = fields.Str(data_key="batchId", validate=validate.Length(max=200))
    type_id = fields.UUID(data_key="typeId")
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))


class NextTaskArgs(Schema):
    project_id = fields.Str(data_key="projectId", validate=validate.Length(min=1, max=100),
                            metadata={"description": "Project id or name; required with an "
                                                     "operator token, an agent session may "
                                                     "omit it (its own project)"})
    wait_seconds = JsonNumber(data_key="waitSeconds", load_default=0,
                              validate=validate.Range(min=0, max=DEFAULT_LONG_POLL_MAX_SECONDS),
                              metadata={"description": "Long poll: with nothing to give, wait "
                                                       "up to this long for a task"})


class AgentNameArg(Schema):
    agent_name = fields.Str(data_key="agentName", validate=AGENT_NAME)


class CompleteArgs(AgentNameArg):
    result = fields.Raw(allow_none=True)
    outputs = fields.Raw(allow_none=True)


class FailArgs(AgentNameArg):
    error = _text(required=True)
    can_retry = fields.Bool(data_key="canRetry", load_default=True)


class ReleaseArgs(AgentNameArg):
    """`release` takes only the holder's name (default: the session's)."""


class ExtendLeaseArgs(AgentNameArg):
    extension_minutes = _minutes(required=True, data_key="extensionMinutes")


def validate_agent_name(name: str) -> None:
    """Check a path agent name like a body one (422 with the same message)."""
    try:
        AGENT_NAME(name)
    except ValidationError as exc:
        raise ValidationError({"agentName": exc.messages}) from None


# -- responses ------------------------------------------------------------------------------

class StatsSchema(Schema):
    total_tasks = fields.Int(data_key="totalTasks")
    completed_tasks = fields.Int(data_key="completedTasks")
    failed_tasks = fields.Int(data_key="failedTasks")
    queued_tasks = fields.Int(data_key="queuedTasks")
    running_tasks = fields.Int(data_key="runningTasks")


def stats_of(counts: dict[TaskStatus, int]) -> dict[str, int]:
    """Task counts by status in the shape of `StatsSchema`."""
    return {"total_tasks": sum(counts.values()),
            "completed_tasks": counts[TaskStatus.COMPLETED],
            "failed_tasks": counts[TaskStatus.FAILED],
            "queued_tasks": counts[TaskStatus.QUEUED],
            "running_tasks": counts[TaskStatus.RUNNING]}


class ProjectConfigSchema(Schema):
    default_max_retries = fields.Int(data_key="defaultMaxRetries")
    default_lease_duration_minutes = fields.Float(data_key="defaultLeaseDurationMinutes")
    reaper_interval_minutes = fields.Float(data_key="reaperIntervalMinutes")


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
    stats = fields.Function(lambda view: StatsSchema().dump(stats_of(view.counts)),
                            metadata={"type": "object"})


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


    def _run_after(self, task: Any) -> str | None:
        """`runAfter` while the task waits for its moment, null once it is due (by the
        service's clock, read at the start of the request)."""
        if task.run_after is None:
            return None
        now = g.get("now") if has_app_context() else None
        if now is not None and task.run_after <= now:
            return None
        return rfc3339(task.run_after)


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
    task = fields.Nested(TaskSchema, allow_none=True)
    agent_name = fields.Str(data_key="agentName")
    project = fields.Nested(LeaseProjectSchema, allow_none=True)


class ReclaimSchema(Schema):
    reclaimed_tasks = fields.Int(data_key="reclaimedTasks", attribute="tasks")
    cleaned_agents = fields.Int(data_key="cleanedAgents", attribute="agents")


class PaginationSchema(Schema):
    total = fields.Int()
    limit = fields.Int()
    offset = fields.Int()


class ValidationDetailSchema(Schema):
    field = fields.Str()
    message = fields.Str()
    value = fields.Raw(allow_none=True)


class ErrorSchema(Schema):
    """The error envelope every status >= 400 carries."""

    success = fields.Bool(dump_default=False)
    error = fields.Str()
    timestamp = fields.Str()
    correlation_id = fields.Str(data_key="correlationId")
    validation_details = fields.List(fields.Nested(ValidationDetailSchema),
                                     data_key="validationDetails")


IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Makes the create safe to repeat: the same key within 24 hours returns "
                   "the first answer and creates nothing; with a different body it is 409.",
}


_ENVELOPES: dict[tuple[str, bool, bool], type[Schema]] = {}


def envelope(schema: type[Schema], many: bool = False, paginated: bool = False
             ) -> type[Schema]:
    """The success envelope `{success, data[, pagination]}` around a schema."""
    key = (schema.__name__, many, paginated)
    if key not in _ENVELOPES:
        members: dict[str, fields.Field] = {
            "success": fields.Bool(dump_default=True),
            "data": fields.Nested(schema, many=many, allow_none=True),
            "error": fields.Str(metadata={"description": "Only when success is false"}),
        }
        if paginated:
            members["pagination"] = fields.Nested(PaginationSchema)
        base = schema.__name__.removesuffix("Schema")
        name = f"{base}{'List' if many else ''}{'Page' if paginated else ''}Envelope"
        _ENVELOPES[key] = Schema.from_dict(members, name=name)
    return _ENVELOPES[key]


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
