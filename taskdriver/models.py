"""The nouns of TaskDriver: statuses as str-Enums and immutable records.

Records are frozen so that a rule can never change a stored object behind the storage
backend's back: every change is a new record handed to `put_*`, which keeps indexes right.
Times are POSIX seconds (floats); the API layer formats them as RFC 3339.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type: dependencies.py builds on these records
    pass

DEFAULT_MAX_RETRIES = 3
DEFAULT_LEASE_DURATION_MINUTES = 10.0
DEFAULT_REAPER_INTERVAL_MINUTES = 1.0
MIN_MINUTES = 0.05
MAX_MINUTES = 1440.0
MAX_RETRIES_LIMIT = 100
IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600.0
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000
MAX_DELAY_SECONDS = 365 * 24 * 3600
MAX_CONCURRENT_LIMIT = 100_000
MAX_RATE_COUNT = 100_000
MAX_RATE_SECONDS = 86_400
REASON_MAX_LENGTH = 1000  # characters of a cancel's reason or a progress message
DEFAULT_MAX_RETRY_DELAY_SECONDS = 3600.0
DEFAULT_ARCHIVE_AFTER_DAYS = 7.0
OWNER_PREFIX_LENGTH = 8  # hex digits of a project's id that its records' ids start with


def new_id() -> str:
    """A fresh random UUID4 string: the id of a project, session or attempt."""
    return str(uuid.uuid4())


def new_id_within(project_id: str) -> str:
    """A UUID4 for a project's task or task type that starts like its project's id.

    The id then names its owner: storage finds a task's project from the task id alone, with
    no index to write and none to read (32 of the 122 random bits are given up for that).
    """
    return new_ids_within(project_id, 1)[0]


def new_ids_within(project_id: str, count: int) -> list[str]:
    """`count` ids as `new_id_within` describes, from one read of the OS's random source.

    A bulk create needs 1,000 at once: `uuid.uuid4()` per id reads the source each time
    (3.8 ms of the request); one read cut into 16-byte slices, each made a version 4 UUID
    by `uuid.UUID` (which sets the version and variant bits), costs a fraction of that.
    """
    prefix = project_id[:OWNER_PREFIX_LENGTH]
    random = os.urandom(16 * count)
    return [prefix + str(uuid.UUID(bytes=random[start:start + 16], version=4))[
        OWNER_PREFIX_LENGTH:] for start in range(0, 16 * count, 16)]


def owner_prefix(record_id: str) -> str:
    """The part of a task's or task type's id that its project's id starts with."""
    return record_id[:OWNER_PREFIX_LENGTH]


class ProjectStatus(str, Enum):
    ACTIVE = "active"
    CLOSED = "closed"


class TaskStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # ended by an operator (terminal)
    WAITING = "waiting"  # has an unfinished dependency: never leased until released


class DependencyFailure(str, Enum):
    """What a waiting task does when one of its dependencies ends failed (or cancelled):
    fail too (naming it), or run anyway."""

    FAIL = "fail"
    RUN = "run"


MAX_DEPENDS_ON = 100  # task ids one task may wait for


class AttemptStatus(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class DuplicateHandling(str, Enum):
    ALLOW = "allow"
    IGNORE = "ignore"
    FAIL = "fail"


class RetryBackoff(str, Enum):
    """How the wait before a retry grows: the same each time, or doubling each time."""

    FIXED = "fixed"
    EXPONENTIAL = "exponential"


class Role(str, Enum):
    ADMIN = "admin"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    default_max_retries: int = DEFAULT_MAX_RETRIES
    default_lease_duration_minutes: float = DEFAULT_LEASE_DURATION_MINUTES
    reaper_interval_minutes: float = DEFAULT_REAPER_INTERVAL_MINUTES
    archive_after_days: float = DEFAULT_ARCHIVE_AFTER_DAYS  # finished tasks then leave
    delete_archived_after_days: float | None = None  # None: the archive keeps them


@dataclass(frozen=True, slots=True)
class Project:
    """A queue of tasks. `owner_prefixed_ids`: its tasks' and task types' ids all start
    like its own (`new_id_within`); projects made before that was so may hold others."""

    id: str
    name: str
    description: str
    instructions: str
    status: ProjectStatus
    config: ProjectConfig
    created_at: float
    updated_at: float
    owner_prefixed_ids: bool = False
    paused: bool = False  # next-task leases nothing from it while set


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `count` leases of a task type begin in any `per_seconds` seconds."""

    count: int
    per_seconds: float


@dataclass(frozen=True, slots=True)
class TaskType:
    id: str
    project_id: str
    name: str
    template: str | None
    variables: tuple[str, ...]
    duplicate_handling: DuplicateHandling
    max_retries: int | None
    lease_duration_minutes: float | None
    created_at: float
    updated_at: float
    priority: int = 0  # its tasks' default
    retry_delay_seconds: float = 0.0  # 0: a failed task is due again at once
    retry_backoff: RetryBackoff = RetryBackoff.EXPONENTIAL
    max_retry_delay_seconds: float = DEFAULT_MAX_RETRY_DELAY_SECONDS
    max_concurrent: int | None = None  # None: no limit on its running tasks
    rate_limit: RateLimit | None = None  # None: leases begin as fast as agents ask
    paused: bool = False  # next-task leases none of its tasks while set

    @property
    def controlled(self) -> bool:
        """Whether a limit applies to leasing its tasks (a paused type leases none)."""
        return self.paused or self.max_concurrent is not None or self.rate_limit is not None


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    agent_name: str
    started_at: float
    ended_at: float | None = None
    status: AttemptStatus = AttemptStatus.RUNNING
    result: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    """One unit of work. `seq` is its place in the project's FIFO, fixed at creation."""

    id: str
    project_id: str
    seq: int
    type_id: str | None
    instructions: str
    variables: dict[str, str]
    batch_id: str | None
    status: TaskStatus
    max_retries: int
    created_at: float
    updated_at: float
    duplicate_key: str | None = None
    retry_count: int = 0
    assigned_to: str | None = None
    assigned_at: float | None = None
    lease_expires_at: float | None = None
    result: Any = None
    outputs: Any = None
    error: str | None = None
    completed_at: float | None = None
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
    description: str | None = None  # for people; agents work from the instructions
    priority: int = 0  # higher first; within a priority, lower `seq` first
    run_after: float | None = None  # not handed out before this moment (None: due)
    progress: float | None = None  # 0-100, as its holder last reported
    progress_message: str | None = None
    progress_at: float | None = None
    # What it waits for (fixed at creation): these tasks, and every task of this batch.
    depends_on: tuple[str, ...] = ()
    depends_on_batch: str | None = None
    on_dependency_failure: DependencyFailure = DependencyFailure.FAIL


@dataclass(frozen=True, slots=True)
class Session:
    """An agent's login. Only the SHA-256 of its bearer token is ever stored.

    `replaced_at`: when a newer login under the same agent name ended it. The record is
    kept until it expires, so its token is refused with that reason rather than as unknown.
    """

    id: str
    token_hash: str
    agent_name: str
    project_id: str
    created_at: float
    expires_at: float
    last_activity: float
    replaced_at: float | None = None

    @property
    def live(self) -> bool:
        """Not ended by a newer login (expiry is a matter of time; see `Authenticator`)."""
        return self.replaced_at is None


SESSION_REPLACED_MESSAGE = ("A newer login for agent {agent} ended this session; log in "
                            "again with resumeExisting or allowMultipleSessions to share it")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an operator (no session) or an agent bound to one project and name.

    `project`: an agent's project as authentication read it with the session (None: not
    read, or deleted); see `Core.session_project`.
    """

    role: Role
    session: Session | None = None
    project: Project | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


OPERATOR = Principal(Role.ADMIN)
"""The operator, as the server's own tools act (the operator CLI, the metrics scrape)."""


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A create sent with an `Idempotency-Key`: the key, and a hash of what was asked.

    The fingerprint covers the operation, the caller and the body, so the same key sent
    with anything else is told apart from a true repeat.
    """

    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What a create under an `Idempotency-Key` made, kept so a repeat gets the same answer.

    `id` is the client's key; `outcome` holds the ids created and the counts reported.
    """

    id: str
    fingerprint: str
    created_at: float
    outcome: dict[str, Any]
