"""Request schemas: what a route accepts, loaded from camelCase JSON or the query string
into the snake_case keyword arguments the service takes.

Every rule a body must meet is written here once; flask-smorest documents the same schemas,
so the OpenAPI document cannot drift from what the routes accept.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ..archiving import MAX_ARCHIVE_DAYS, MIN_ARCHIVE_DAYS
from ..config import DEFAULT_LONG_POLL_MAX_SECONDS
from ..inputs import KEEP_ARCHIVE_FOREVER
from ..models import (
    MAX_CONCURRENT_LIMIT,
    MAX_DEPENDS_ON,
    MAX_RATE_COUNT,
    MAX_RATE_SECONDS,
    REASON_MAX_LENGTH,
    DependencyFailure,
    DuplicateHandling,
    ProjectStatus,
    RetryBackoff,
    TaskStatus,
)
from .fields import (
    AGENT_NAME,
    DELAY,
    MAX_OFFSET,
    NAME_LENGTH,
    PRIORITY,
    PROJECT_NAME,
    RETRIES,
    TASK_TYPE_NAME,
    VARIABLE,
    JsonBool,
    JsonInt,
    JsonNumber,
    StringMap,
    minutes,
    text,
)

ARCHIVE_DAYS = validate.Range(min=MIN_ARCHIVE_DAYS, max=MAX_ARCHIVE_DAYS)


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
    default_lease_duration_minutes = minutes(data_key="defaultLeaseDurationMinutes")
    reaper_interval_minutes = minutes(data_key="reaperIntervalMinutes")
    archive_after_days = JsonNumber(data_key="archiveAfterDays", validate=ARCHIVE_DAYS,
                                    metadata={"description": "Finished tasks older than this "
                                                             "move to the project's archive"})
    delete_archived_after_days = JsonNumber(
        data_key="deleteArchivedAfterDays", allow_none=True, validate=ARCHIVE_DAYS,
        metadata={"description": "Archived tasks are deleted this long after archiving; "
                                 "null keeps them forever"})

    @post_load
    def _keep_forever(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """A null retention, told apart from one not given (None there)."""
        if "delete_archived_after_days" in data and data["delete_archived_after_days"] is None:
            data["delete_archived_after_days"] = KEEP_ARCHIVE_FOREVER
        return data


class ProjectCreateArgs(Schema):
    name = fields.Str(required=True, validate=[NAME_LENGTH, PROJECT_NAME])
    description = text(load_default="")
    instructions = text(load_default="")
    config = fields.Nested(ProjectConfigArgs, load_default=dict)


class ProjectUpdateArgs(Schema):
    name = fields.Str(validate=[NAME_LENGTH, PROJECT_NAME])
    description = text()
    instructions = text()
    status = fields.Str(validate=validate.OneOf([s.value for s in ProjectStatus]))
    config = fields.Nested(ProjectConfigArgs)
    paused = JsonBool(metadata={"description": "While true, next-task leases nothing from "
                                               "the project (resumes still work)"})


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


class RateLimitArgs(Schema):
    count = JsonInt(required=True, validate=validate.Range(min=1, max=MAX_RATE_COUNT))
    per_seconds = JsonInt(required=True, data_key="perSeconds",
                          validate=validate.Range(min=1, max=MAX_RATE_SECONDS))


class TaskTypeCreateArgs(Schema):
    name = fields.Str(required=True, validate=[NAME_LENGTH, TASK_TYPE_NAME])
    template = text(allow_none=True)
    variables = fields.List(fields.Str(validate=VARIABLE), validate=validate.Length(max=1000))
    duplicate_handling = fields.Str(data_key="duplicateHandling", validate=validate.OneOf(
        [d.value for d in DuplicateHandling]))
    max_retries = JsonInt(data_key="maxRetries", validate=RETRIES)
    lease_duration_minutes = minutes(data_key="leaseDurationMinutes")
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
    max_concurrent = JsonInt(
        data_key="maxConcurrent", allow_none=True,
        validate=validate.Range(min=1, max=MAX_CONCURRENT_LIMIT),
        metadata={"description": "At most this many of its tasks running at once (null: "
                                 "no limit)"})
    rate_limit = fields.Nested(RateLimitArgs, data_key="rateLimit", allow_none=True,
                               metadata={"description": "At most `count` leases begin in any "
                                                        "`perSeconds` seconds (null: none)"})
    paused = JsonBool(metadata={"description": "While true, next-task leases none of its "
                                               "tasks"})


class TaskTypeUpdateArgs(TaskTypeCreateArgs):
    name = fields.Str(validate=[NAME_LENGTH, TASK_TYPE_NAME])


class TaskUpdateArgs(Schema):
    priority = JsonInt(validate=PRIORITY,
                       metadata={"description": "Higher first (-1000 to 1000); default the "
                                                "type's"})
    instructions = text(allow_none=True)
    variables = StringMap()
    batch_id = fields.Str(data_key="batchId", allow_none=True,
                          validate=validate.Length(min=1, max=200))
    description = text(allow_none=True, max_length=10_000,
                       metadata={"description": "For people; agents get the instructions"})


class TaskArgs(TaskUpdateArgs):
    type_id = fields.UUID(data_key="typeId", allow_none=True)
    run_after = fields.AwareDateTime(data_key="runAfter", metadata={
        "description": "Not handed out before this moment (RFC 3339)"})
    delay_seconds = JsonNumber(data_key="delaySeconds", validate=DELAY, metadata={
        "description": "Not handed out for this many seconds"})
    depends_on = fields.List(
        fields.Str(validate=validate.Length(min=1, max=100)), data_key="dependsOn",
        validate=validate.Length(max=MAX_DEPENDS_ON),
        metadata={"description": "Ids of tasks of this project it waits for (status "
                                 "`waiting` until they finish)"})
    depends_on_batch = fields.Str(
        data_key="dependsOnBatch", validate=validate.Length(min=1, max=200),
        metadata={"description": "A batch of this project whose every task it waits for, "
                                 "tasks added to the batch before it finishes included"})
    on_dependency_failure = fields.Str(
        data_key="onDependencyFailure",
        validate=validate.OneOf([policy.value for policy in DependencyFailure]),
        metadata={"description": "When a dependency fails or is cancelled: `fail` (the "
                                 "default: this task fails too, naming it) or `run`"})

    @validates_schema
    def _one_start(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "run_after" in data and "delay_seconds" in data:
            raise ValidationError("Give runAfter or delaySeconds, not both", "delaySeconds")


class RetryFailedArgs(Schema):
    batch_id = fields.Str(data_key="batchId", validate=validate.Length(min=1, max=200),
                          metadata={"description": "Only this batch's failed tasks"})
    type_id = fields.UUID(data_key="typeId",
                          metadata={"description": "Only this task type's failed tasks"})


class BulkTaskArgs(Schema):
    tasks = fields.List(fields.Dict(), required=True,
                        validate=validate.Length(min=1, max=1000),
                        metadata={"description": "Task bodies as for a single create; each "
                                                 "is validated and created on its own"})
    batch_id = fields.Str(data_key="batchId", allow_none=True,
                          validate=validate.Length(min=1, max=200))


class TaskListArgs(Paging):
    archived = fields.Bool(load_default=False,
                           metadata={"description": "List the project's archive instead "
                                                    "(oldest archived first)"})
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
    error = text(required=True)
    can_retry = fields.Bool(data_key="canRetry", load_default=True)


class ReleaseArgs(AgentNameArg):
    """`release` takes only the holder's name (default: the session's)."""


class ExtendLeaseArgs(AgentNameArg):
    extension_minutes = minutes(required=True, data_key="extensionMinutes")


class ProgressArgs(AgentNameArg):
    progress = JsonNumber(validate=validate.Range(min=0, max=100), allow_nan=False,
                          metadata={"description": "How far the task got, 0-100"})
    message = text(max_length=REASON_MAX_LENGTH)
    extension_minutes = minutes(data_key="extensionMinutes", metadata={
        "description": "Also extend the lease, as extend-lease does"})

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not {"progress", "message", "extension_minutes"} & data.keys():
            raise ValidationError("Give progress, message or extensionMinutes", "progress")


class CancelArgs(Schema):
    reason = text(max_length=REASON_MAX_LENGTH,
                  metadata={"description": "Why; the task's `error` holds it"})


class CancelTasksArgs(Schema):
    batch_id = fields.Str(data_key="batchId", validate=validate.Length(min=1, max=200),
                          metadata={"description": "Only this batch's tasks"})
    type_id = fields.UUID(data_key="typeId", metadata={"description": "Only this type's"})
    status = fields.Str(validate=validate.OneOf([TaskStatus.QUEUED.value,
                                                 TaskStatus.RUNNING.value]),
                        metadata={"description": "Only queued or only running tasks "
                                                 "(default: both)"})


def validate_agent_name(name: str) -> None:
    """Check a path agent name like a body one (422 with the same message)."""
    try:
        AGENT_NAME(name)
    except ValidationError as exc:
        raise ValidationError({"agentName": exc.messages}) from None


IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Makes the create safe to repeat: the same key within 24 hours returns "
                   "the first answer and creates nothing; with a different body it is 409.",
}
