"""The storage contract. Backends persist and index; they never decide what a change means.

Two kinds of atomic section exist:

* `Storage.global_tx()`: projects, agent sessions and minted admin tokens.
* `Storage.project_tx(project_id)`: one project's task types and tasks.

Both also keep the idempotency keys of the creates made in their scope.

A project's writers come in two kinds. An exclusive one (the default) keeps every other
writer of the project out until it ends: task types, and changes that read many tasks to
decide. A *shared* one (`shared=True`: the queue's claims, outcomes, reaping and creates)
keeps only exclusive writers out, so shared writers of one project run side by side, and it
may change only what it holds: tasks it locked (`lock_task`, `claim_next`, `expired_leases`,
`waiting_dependents`), new tasks (`add_tasks`) and idempotency records. The store itself
then keeps what a queue needs across them: two sections never hold one task, an agent never
has two running tasks in a project, two live tasks never hold one unique key, and positions
(`next_seqs`) never repeat. A write that a concurrent shared writer made impossible raises
`Contention` and the section keeps nothing: the caller opens a new one and looks again. A
backend whose writers never overlap (the file backend) may run shared sections exclusively;
it then never raises `Contention`.

Either may be opened with `write=False` for reading only: it sees every write acknowledged
before it began, may let writers proceed meanwhile (so it is cheaper), and refuses `put_*`
and `delete_*` with a `RuntimeError` (a programming error, never a client's).

Inside a section every read sees every write committed before it (by any thread, process
or host) and the section's own writes; nobody else writes the same scope until it ends
(in a shared section: nothing it holds).
When the block exits normally its writes become durable together before the section ends;
when it raises, none of them is kept. Records are immutable: a change is a new record
passed to `put_*`.

Lookups return None when nothing matches; they never raise NotFound. `project_tx` raises
`errors.NotFound` when the project does not exist (or was deleted meanwhile) and backends
wrap driver failures in `errors.StorageError`, so nothing above imports a driver.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager

from ..answers import OLDEST_FIRST, RecentActivity, TaskFilter, TaskOrder, TypeLoad
from ..errors import StorageError
from ..models import IdempotencyRecord, Project, Session, Task, TaskStatus, TaskType
from .archive_contract import ArchiveTx


class Contention(StorageError):
    """A concurrent writer of the project changed what this write relied on: try again."""


class IdempotencyRecords(ABC):
    """Idempotency keys of the creates made in a section's scope (global or one project).

    Kept in the same scope as what they created, so a create and its key are stored in one
    commit: a key is never remembered for a create that was not kept, nor the reverse.
    """

    @abstractmethod
    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record kept under this key, however old."""

    @abstractmethod
    def put_idempotency(self, record: IdempotencyRecord) -> None:
        """Keep the record under its key, replacing the one this section read there (with
        `get_idempotency`); `Contention` if another section stored one there meanwhile."""

    @abstractmethod
    def purge_idempotency(self, before: float) -> int:
        """Delete the records created before `before`; returns how many went."""


class GlobalTx(IdempotencyRecords):
    """Projects, sessions and admin tokens, inside one atomic section."""

    @abstractmethod
    def get_project(self, project_id: str) -> Project | None:
        """The project with this id."""

    @abstractmethod
    def project_by_name(self, name: str) -> Project | None:
        """The project with exactly this name (names are unique)."""

    def find_project(self, reference: str) -> Project | None:
        """The project with this id or, failing that, this name (a body's `projectId`)."""
        return self.get_project(reference) or self.project_by_name(reference)

    @abstractmethod
    def list_projects(self) -> list[Project]:
        """Every project, oldest first."""

    @abstractmethod
    def put_project(self, project: Project) -> None:
        """Create or replace a project; a new one gets its (empty) task space at once."""

    @abstractmethod
    def delete_project(self, project_id: str) -> None:
        """Delete a project with all its task types and tasks."""

    @abstractmethod
    def session_by_token_hash(self, token_hash: str) -> Session | None:
        """The session whose bearer token hashes to this value."""

    @abstractmethod
    def session_with_project(self, token_hash: str) -> tuple[Session, Project | None] | None:
        """As `session_by_token_hash`, with the session's project (None: deleted) found in
        the same look-up: an agent's requests name that project, and authentication then
        answers for it too."""

    @abstractmethod
    def put_session(self, session: Session) -> None:
        """Create or replace a session."""

    @abstractmethod
    def delete_session(self, session_id: str) -> None:
        """Delete a session (no error if it is gone)."""

    @abstractmethod
    def sessions(self) -> list[Session]:
        """Every stored session, expired ones included."""

    @abstractmethod
    def has_admin_token(self, token_hash: str) -> bool:
        """Whether a minted operator token hashes to this value."""

    @abstractmethod
    def add_admin_token(self, token_hash: str, created_at: float) -> None:
        """Remember a minted operator token by its hash."""

    @abstractmethod
    def admin_token_count(self) -> int:
        """How many operator tokens were minted."""


class ProjectTx(IdempotencyRecords, ArchiveTx):
    """One project's task types and tasks, inside one atomic section."""

    project_id: str

    @abstractmethod
    def get_task_type(self, type_id: str) -> TaskType | None:
        """The task type with this id in this project."""

    @abstractmethod
    def task_type_by_name(self, name: str) -> TaskType | None:
        """The task type with exactly this name in this project."""

    @abstractmethod
    def list_task_types(self) -> list[TaskType]:
        """Every task type of the project, oldest first."""

    @abstractmethod
    def put_task_type(self, task_type: TaskType) -> None:
        """Create or replace a task type."""

    @abstractmethod
    def delete_task_type(self, type_id: str) -> None:
        """Delete a task type."""

    @abstractmethod
    def task_type_in_use(self, type_id: str) -> bool:
        """Whether a queued or running task uses the type."""

    @abstractmethod
    def get_task(self, task_id: str) -> Task | None:
        """The task with this id in this project."""

    @abstractmethod
    def put_task(self, task: Task) -> None:
        """Create or replace a task; a replaced task keeps its place in the list order."""

    def put_tasks(self, tasks: Sequence[Task]) -> None:
        """`put_task` each of these tasks, which exist already (a backend may store them
        in one statement: releasing a batch's 10,000 dependents is one write)."""
        for task in tasks:
            self.put_task(task)

    @abstractmethod
    def delete_task(self, task_id: str) -> None:
        """Delete a task."""

    @abstractmethod
    def lock_task(self, task_id: str) -> Task | None:
        """`get_task`, the task then held by this section until it ends (waiting while
        another section holds it), so that it may `put_task` the task's next state."""

    @abstractmethod
    def add_tasks(self, tasks: Sequence[Task], unique_keys: Collection[str]) -> None:
        """Store new tasks, all in one go. A task whose `duplicate_key` is in `unique_keys`
        must be the only live (not failed) task holding its key uniquely: `Contention` when
        another section stored one since this one looked (`find_duplicates`)."""

    @abstractmethod
    def next_seqs(self, count: int) -> list[int]:
        """`count` queue positions, increasing, each after every task created in the
        project before (gaps are allowed); to be used by this section's new tasks."""

    def next_seq(self) -> int:
        """One queue position (see `next_seqs`)."""
        return self.next_seqs(1)[0]

    # The queue's three lookups take `now`, which callers never move backwards: a task that
    # came due stays due (a backend may promote it once, for good).

    @abstractmethod
    def next_due(self, now: float, excluded_types: Collection[str] = ()) -> Task | None:
        """The queued task to hand out at `now`: among those due (`run_after` None or not
        after `now`) and not of an `excluded_types` type, the highest `priority`, and within
        it the lowest `seq`. Passing over excluded types costs about one step per type, not
        one per task passed (a paused type's 100,000 tasks do not slow the others')."""

    @abstractmethod
    def claim_next(self, now: float, excluded_types: Collection[str] = ()) -> Task | None:
        """`next_due`, the task then held by this section; tasks other sections hold are
        passed over without waiting, so concurrent claims take different tasks."""

    @abstractmethod
    def type_load(self, type_id: str, since: float | None, lock: bool = False) -> TypeLoad:
        """A task type's running tasks (from an index or a kept count, never a scan of the
        queue) and the lease starts recorded for it at or after `since` (0 when None).

        With `lock` the section holds the type until it ends (waiting while another
        section holds it), so what it read stays true for its own claim: the claims of one
        controlled type take turns across every worker and host."""

    @abstractmethod
    def record_lease_start(self, type_id: str, at: float, forget_before: float) -> None:
        """Remember that a lease of a rate-limited type began at `at` (where every worker
        and host sees it); starts before `forget_before` may be forgotten."""

    @abstractmethod
    def due_count(self, type_id: str, now: float) -> int:
        """How many queued tasks of the type are due at `now`."""

    @abstractmethod
    def expired_leases(self, now: float) -> list[Task]:
        """Running tasks whose `lease_expires_at` is not after `now`, each then held by this
        section; tasks other sections hold are passed over (they are being changed)."""

    @abstractmethod
    def delayed_count(self, now: float) -> int:
        """How many queued tasks are not due yet at `now`."""

    @abstractmethod
    def next_run_after(self, now: float) -> float | None:
        """The soonest `run_after` after `now` among queued tasks, if any."""

    @abstractmethod
    def running_tasks(self) -> list[Task]:
        """Every running task (as many as there are working agents)."""

    @abstractmethod
    def held_and_expired(self, agent_name: str, now: float) -> tuple[Task | None, list[Task]]:
        """The running task assigned to this agent (if any), and `expired_leases(now)`: the
        two things every next-task looks at first, in one lookup."""

    @abstractmethod
    def waiting_dependents(self, task_ids: Collection[str], batch_ids: Collection[str]
                           ) -> list[Task]:
        """The `waiting` tasks that depend on any of these tasks (`depends_on`) or batches
        (`depends_on_batch`), in id order, each then held by this section (waiting while
        another section holds it): the tasks finishing these may release. Found through an
        index from a task and from a batch to its dependents, so the cost follows how many
        depend on them, never how many tasks the project holds."""

    def guard_batch(self, batch_id: str, creating: bool) -> None:
        """Hold a batch until the section ends against the sections that could race this
        one over its dependents. A section finishing one of its tasks (`creating` False)
        holds it shared, so finishers go side by side; a section creating a task that
        depends on it holds it alone, so it sees every finish committed before, and every
        finisher after it sees the new dependent. Writers that never overlap need nothing."""

    def serialize_batch_release(self, batch_id: str) -> None:
        """Hold the release of a batch's dependents alone until the section ends: of two
        sections finishing a batch's last tasks at once, the later one then sees the
        earlier one's finish, so one of them releases. Writers that never overlap need
        nothing."""

    @abstractmethod
    def dependents(self, task_id: str | None, batch_id: str | None, limit: int) -> list[str]:
        """Ids of up to `limit` tasks, in any status, that depend on this task or on this
        batch (None: none), oldest first."""

    @abstractmethod
    def find_duplicates(self, duplicate_keys: Collection[str]) -> dict[str, Task]:
        """For each key that has one, the oldest task that is not failed with that key."""

    def find_duplicate(self, duplicate_key: str) -> Task | None:
        """A task that is not failed and has this duplicate key (oldest first)."""
        return self.find_duplicates((duplicate_key,)).get(duplicate_key)

    @abstractmethod
    def list_tasks(self, task_filter: TaskFilter, limit: int, offset: int,
                   order: TaskOrder = OLDEST_FIRST) -> tuple[list[Task], int]:
        """One page of matching tasks in `order` (oldest first unless told), and how many
        match in all."""

    @abstractmethod
    def status_counts(self, batch_id: str | None = None) -> dict[TaskStatus, int]:
        """How many tasks are in each status, in the whole project or in one batch."""

    @abstractmethod
    def batch_ids(self) -> list[str]:
        """Every batch id that tasks of the project carry, in order of first use."""

    @abstractmethod
    def recent_activity(self, since: float) -> RecentActivity:
        """Tasks completed and failed at or after `since`; completed tasks' lease time."""

    @abstractmethod
    def outcome_times(self, since: float) -> tuple[list[float], list[float]]:
        """When tasks completed, and when tasks became failed, at or after `since` (at most
        24 hours back), each list in time order."""


class ChangeWatch(ABC):
    """Notice of changes to one project or its tasks, for a request waiting for work.

    Waiting holds no lock and no database connection: a long poll costs a sleeping thread.
    """

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block until the project or its tasks may have changed since the watch began (or
        since the previous `wait` returned True), or `timeout` seconds passed. Returns
        whether a change was seen; a change made by any thread, process or host is seen
        within about a second, and a True with nothing claimable is allowed (the caller
        looks again)."""


class Storage(ABC):
    """A storage backend: opens atomic sections and finds which project owns an id."""

    provider: str

    @abstractmethod
    def global_tx(self, write: bool = True) -> AbstractContextManager[GlobalTx]:
        """An atomic section over projects, sessions and admin tokens."""

    @abstractmethod
    def project_tx(self, project_id: str, write: bool = True, shared: bool = False
                   ) -> AbstractContextManager[ProjectTx]:
        """An atomic section over one project's task types and tasks (a `shared` writer
        lets other shared writers in: see the module's docstring)."""

    @abstractmethod
    def watch(self, project_id: str) -> ChangeWatch:
        """Start watching a project for changes (made after this call) to its tasks."""

    @abstractmethod
    def project_of_task(self, task_id: str) -> Project | None:
        """The project holding this task (one lookup: most task routes start here)."""

    @abstractmethod
    def project_of_task_type(self, type_id: str) -> Project | None:
        """The project holding this task type."""

    @abstractmethod
    def check_writable(self) -> None:
        """Raise StorageError unless a write would reach durable storage now."""

    @abstractmethod
    def close(self) -> None:
        """Release the files and connections this process holds."""
