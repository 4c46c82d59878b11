"""What the service answers with, and the filters it takes: read models built from the
records of `models.py` (views of projects, stats, batch progress, leases, bulk outcomes)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from .models import Project, Task, TaskStatus

if TYPE_CHECKING:  # only a type: dependencies.py builds on these records
    from .dependencies import TaskDetail



@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Filters of the task list; None means "any". The first four are equality (the API's
    query parameters); the `_contains` ones and `text` are case-insensitive substrings, for
    people looking for something (`text` searches the instructions and the result)."""

    status: TaskStatus | None = None
    assigned_to: str | None = None
    batch_id: str | None = None
    type_id: str | None = None
    batch_contains: str | None = None
    agent_contains: str | None = None
    text: str | None = None


class TaskSort(str, Enum):
    """What a task list can be ordered by (each a column the storage keeps apart)."""

    CREATED = "created"
    STATUS = "status"
    PRIORITY = "priority"
    AGENT = "agent"
    BATCH = "batch"
    UPDATED = "updated"


@dataclass(frozen=True, slots=True)
class TaskOrder:
    """The order of a task list: by one key (tasks without a value for it last), ties by
    creation. The default, oldest first, is the queue's own order."""

    sort: TaskSort = TaskSort.CREATED
    descending: bool = False


OLDEST_FIRST = TaskOrder()
"""The queue's own order, every task list's default."""


@dataclass(frozen=True, slots=True)
class RecentActivity:
    """What happened in a project since a moment: outcomes and total time spent."""

    completed: int
    failed: int
    completed_duration_total: float


@dataclass(frozen=True, slots=True)
class ProjectView:
    """A project with its task counts by status."""

    project: Project
    counts: dict[TaskStatus, int]  # archived tasks included
    archived: int = 0  # how many of them are archived


@dataclass(frozen=True, slots=True)
class ProjectStats:
    """A project's counts, queue depth, working agents and the last hour's outcomes."""

    view: ProjectView
    queue_depth: int
    active_agents: int
    recent: RecentActivity
    average_task_duration: float
    delayed_tasks: int  # queued, not yet due


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A batch's counts by status; `done` when none of its tasks is queued, running or
    waiting."""

    batch_id: str
    counts: dict[TaskStatus, int]
    done: bool


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """A bulk create: the tasks made, duplicates answered by existing tasks, items refused."""

    created: list[Task]
    duplicates: int
    errors: list[ItemError]


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one item of a bulk create was refused: its place in the request, the message, and
    for a field error the fields at fault (`FieldError.details`); the API shapes it."""

    index: int
    message: str
    details: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """A task leased (or resumed) by an agent, with the project it belongs to: the agent
    gets the project's instructions beside the task's."""

    task: Task
    project: Project
    detail: TaskDetail | None = None  # the task with what it waited for


@dataclass(frozen=True, slots=True)
class AgentLease:
    """An agent holding an unexpired lease on a task."""

    agent_name: str
    task: Task


@dataclass(frozen=True, slots=True)
class Throughput:
    """Completions and failures per interval, oldest interval first."""

    start: float
    bucket_seconds: float
    completed: list[int]
    failed: list[int]


@dataclass(frozen=True, slots=True)
class TypeLoad:
    """What a task type's limits are checked against: its running tasks, and the leases of
    it that began inside its rate limit's window (0 without a rate limit)."""

    running: int
    recent_starts: int


@dataclass(frozen=True, slots=True)
class Reaped:
    """What reaping expired leases did: tasks reclaimed, agents whose lease lapsed."""

    tasks: int
    agents: int
