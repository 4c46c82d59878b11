"""The shapes of what the API answers, as TypedDicts: the JSON as sent, with its types.

Keys are the API's own (camelCase), so a result can be printed or passed on as JSON as is.
Times are RFC 3339 strings.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

TaskStatus = Literal["queued", "running", "completed", "failed"]


class Attempt(TypedDict):
    id: str
    agentName: str
    startedAt: str
    endedAt: str | None
    status: Literal["running", "completed", "failed", "timeout"]
    result: Any
    error: str | None


class Task(TypedDict):
    id: str
    projectId: str
    typeId: str | None
    instructions: str
    variables: dict[str, str]
    batchId: str | None
    description: str | None
    priority: int
    runAfter: str | None
    status: TaskStatus
    assignedTo: str | None
    assignedAt: str | None
    leaseExpiresAt: str | None
    retryCount: int
    maxRetries: int
    result: Any
    outputs: Any
    error: str | None
    attempts: list[Attempt]
    createdAt: str
    updatedAt: str
    completedAt: str | None
    archived: NotRequired[bool]  # read from the project's archive (servers since issue 24)


class LeasedProject(TypedDict):
    id: str
    name: str
    instructions: str


class Lease(TypedDict):
    """`next-task`'s data: the task, the agent, and (from servers that send it) the
    project's instructions, which every agent of the project should read first."""

    task: Task
    agentName: str
    project: NotRequired[LeasedProject]


class Counts(TypedDict):
    totalTasks: int
    completedTasks: int
    failedTasks: int
    queuedTasks: int
    runningTasks: int
    archivedTasks: NotRequired[int]  # of the total, how many are archived (since issue 24)


class Project(TypedDict):
    id: str
    name: str
    description: str
    instructions: str
    status: Literal["active", "closed"]
    createdAt: str
    updatedAt: str
    config: dict[str, Any]
    stats: Counts


class ProjectStats(TypedDict):
    project: dict[str, Any]
    queueDepth: int
    delayedTasks: int
    activeAgents: int
    recentActivity: dict[str, Any]


class TaskType(TypedDict):
    id: str
    projectId: str
    name: str
    template: str | None
    variables: list[str]
    duplicateHandling: Literal["allow", "ignore", "fail"]
    maxRetries: int | None
    leaseDurationMinutes: float | None
    priority: int
    retryDelaySeconds: float
    retryBackoff: Literal["fixed", "exponential"]
    maxRetryDelaySeconds: float
    createdAt: str
    updatedAt: str


class Login(TypedDict):
    sessionId: str
    token: str
    expiresAt: str
    agentName: str
    projectId: str


class BulkResult(TypedDict):
    tasksCreated: int
    duplicates: int
    errors: list[dict[str, Any]]
    createdTasks: list[Task]


class Batch(TypedDict):
    batchId: str
    total: int
    queued: int
    running: int
    completed: int
    failed: int
    done: bool


class AgentLease(TypedDict):
    agentName: str
    taskId: str
    assignedAt: str
    leaseExpiresAt: str
    status: str


class Page(TypedDict):
    """One page of a list, and where it sits in the whole."""

    items: list[Any]
    total: int
    limit: int
    offset: int
