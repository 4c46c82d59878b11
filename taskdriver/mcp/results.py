"""What the tools answer, as TypedDicts (the client's own, and the few the MCP face adds).

Each becomes a tool's `outputSchema`; the tool's `structuredContent` is that shape exactly,
lists wrapped in an object as the MCP specification asks.
"""

# No `from __future__ import annotations` here: TypedDict reads NotRequired only from
# evaluated annotations before Python 3.12.
from typing import Any, Literal, NotRequired, TypedDict

from ..client.types import (
    AgentLease,
    Batch,
    BulkResult,
    Project,
    ProjectStats,
    Task,
    TaskType,
)

__all__ = ["Batch", "BulkResult", "Project", "ProjectStats", "Task", "TaskType"]


class ProjectPage(TypedDict):
    """One page of projects and where it sits in the whole list."""

    items: list[Project]
    total: int
    limit: int
    offset: int


class TaskTypePage(TypedDict):
    """One page of a project's task types and where it sits in the whole list."""

    items: list[TaskType]
    total: int
    limit: int
    offset: int


class TaskPage(TypedDict):
    """One page of a project's tasks and where it sits in the whole list."""

    items: list[Task]
    total: int
    limit: int
    offset: int


class ProjectBrief(TypedDict):
    """The project a leased task belongs to, with the instructions every agent follows."""

    id: str
    name: str
    instructions: str


class Lease(TypedDict):
    """The leased task (`id` on top, as REST has it), or none with a message saying so."""

    id: str | None
    task: Task | None
    agentName: str
    project: NotRequired[ProjectBrief]
    message: NotRequired[str]


class Peek(TypedDict):
    """How many tasks could be leased now."""

    projectId: str
    tasksAvailable: int


class ActiveAgents(TypedDict):
    """Agents holding a live lease in the project."""

    agents: list[AgentLease]


class Retried(TypedDict):
    """How many failed tasks went back to the queue."""

    retried: int


class Cancelled(TypedDict):
    """How many unfinished tasks were cancelled."""

    cancelled: int


class Reclaimed(TypedDict):
    """Expired leases taken back now."""

    reclaimedTasks: int
    cleanedAgents: int


class StatusCounts(TypedDict):
    queued: int
    running: int
    completed: int
    failed: int


class LeaseCounts(TypedDict):
    totalRunningTasks: int
    expiredTasks: int
    tasksByStatus: StatusCounts


class LeaseStats(TypedDict):
    """Running tasks, expired leases not yet reclaimed, and tasks by status."""

    projectId: str
    projectName: str
    stats: LeaseCounts


class Health(TypedDict):
    """Whether the server and its storage are healthy (`error` says why not)."""

    status: Literal["healthy", "unhealthy"]
    timestamp: NotRequired[str]
    uptime: NotRequired[float]
    version: NotRequired[str]
    storage: NotRequired[dict[str, Any]]
    error: NotRequired[str]
