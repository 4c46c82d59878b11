"""The shapes of what the API answers, as TypedDicts: the JSON as sent, with its types.

Keys are the API's own (camelCase), so a result can be printed or passed on as JSON as is.
Times are RFC 3339 strings.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

TaskStatus = Literal["queued", "running", "completed", "failed", "cancelled", "waiting"]


class Attempt(TypedDict):
    id: str
    agentName: str
    startedAt: str
    endedAt: str | None
    status: Literal["running", "completed", "failed", "timeout", "cancelled"]
    result: Any
    error: str | None


class TaskFields(TypedDict):
    """A task as every answer has it (`Task` adds what a read of one task carries)."""

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
    progress: NotRequired[float | None]  # 0-100, as the holder last reported
    progressMessage: NotRequired[str | None]
    progressAt: NotRequired[str | None]
    dependsOn: list[str]
    dependsOnBatch: str | None
    onDependencyFailure: Literal["fail", "run"]
    archived: NotRequired[bool]  # read from the project's archive (servers since issue 24)


class Task(TaskFields, total=False):
    """A task; a read of one task and a lease also carry what it waits for and what waits
    for it (optional keys by `total=False`: this module's annotations are strings, which
    TypedDict reads `NotRequired` from only on Python 3.12 and later)."""

    dependencies: list[Dependency]
    dependencyBatch: DependencyBatch | None
    dependents: list[str]


class Dependency(TypedDict):
    """A task another waits for, as it is now (its agent reads the result)."""

    id: str
    status: TaskStatus
    result: Any
    outputs: Any


class DependencyBatch(TypedDict):
    """The counts of the batch a task waits for."""

    batchId: str
    total: int
    completed: int
    failed: int
    cancelled: int


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
    cancelledTasks: NotRequired[int]
    waitingTasks: int
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
    paused: NotRequired[bool]


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
    maxConcurrent: NotRequired[int | None]
    rateLimit: NotRequired[dict[str, float] | None]  # {count, perSeconds}
    paused: NotRequired[bool]
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
    cancelled: NotRequired[int]
    waiting: int
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
