"""What every noun service shares: storage, settings, the clock, the events, the one
project loader, shared sections retried on `Contention`, and the Idempotency-Key records.

Only the services read the clock, through `Core.now`; rules get `now` passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .. import access, rules
from ..config import Settings
from ..errors import Conflict, NotFound
from ..events import QueueEvents
from ..models import (
    Idempotency,
    IdempotencyRecord,
    Principal,
    Project,
    ProjectStatus,
    Task,
    TaskStatus,
    TaskType,
)
from ..storage import GlobalTx, ProjectTx, Storage
from ..storage.base import Contention, IdempotencyRecords

CONTENTION_ATTEMPTS = 8  # shared sections tried before a Contention reaches the client
_Result = TypeVar("_Result")
_Record = TypeVar("_Record")


def load_project(tx: GlobalTx, reference: str, *, by_name: bool = False) -> Project:
    """The project a reference names, or NotFound. Path ids are ids; a body's `projectId`
    (`by_name`) may also be the project's name."""
    project = tx.find_project(reference) if by_name else tx.get_project(reference)
    if project is None:
        raise NotFound("Project not found")
    return project


def authorized(principal: Principal, project: Project, *, for_new_work: bool = False
               ) -> Project:
    """The project, once the caller may see it (and, for new work, it is open)."""
    access.require_project(principal, project.id)
    if for_new_work and project.status is ProjectStatus.CLOSED:
        raise Conflict("Project is closed")
    return project


class Core:
    """The state every noun service works with; one per app, shared by all of them."""

    def __init__(self, storage: Storage, settings: Settings, clock: Callable[[], float],
                 events: QueueEvents) -> None:
        self.storage = storage
        self.settings = settings
        self.now = clock
        self.events = events

    def project(self, principal: Principal, reference: str, *, by_name: bool = False,
                for_new_work: bool = False) -> Project:
        """The one project loader: find, authorize, and (for new work) require it open."""
        with self.storage.global_tx(write=False) as tx:
            project = load_project(tx, reference, by_name=by_name)
        return authorized(principal, project, for_new_work=for_new_work)

    def session_project(self, principal: Principal, reference: str, *,
                        for_new_work: bool = False) -> Project:
        """As `project` (a reference by id or name), answered from what authentication read
        when it is the agent's own project's id (what an agent's next-task names, given no
        `projectId`): one read less for each, and as fresh (both are read as the request
        begins). A name is looked up as ever: another project's id may read the same."""
        known = principal.project
        if known is not None and reference == known.id:
            return authorized(principal, known, for_new_work=for_new_work)
        return self.project(principal, reference, by_name=True, for_new_work=for_new_work)

    def project_of_task(self, principal: Principal, task_id: str) -> Project:
        """The project holding a task, as the caller may see it."""
        project = self.storage.project_of_task(task_id)
        if project is None:
            raise NotFound("Task not found")
        return authorized(principal, project)

    def shared(self, project_id: str, work: Callable[[ProjectTx], _Result]) -> _Result:
        """Run `work` in a shared section of the project (see `storage.base`): again, in a
        new section, when a concurrent writer made one of its writes fail (`Contention`),
        so it looks afresh (say, at the task that writer stored)."""
        for attempt in range(1, CONTENTION_ATTEMPTS + 1):
            try:
                with self.storage.project_tx(project_id, shared=True) as tx:
                    return work(tx)
            except Contention:
                if attempt == CONTENTION_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def shared_on_task(self, principal: Principal, task_id: str,
                       work: Callable[[ProjectTx], _Result]) -> tuple[str, _Result]:
        """Run `work`, which finds the task `task_id` or raises NotFound, in a shared section
        of the project holding it; returns that project's id and what `work` returned.

        An agent's session names its project, so the section opens there at once: one read
        less for every complete, fail and lease extension (on PostgreSQL, one round trip
        of the handful a report costs). Only when the task is not there does the task's
        project get looked up, to say why (another project's: 403; none: 404).
        """
        session = principal.session
        if session is not None:
            try:
                return session.project_id, self.shared(session.project_id, work)
            except NotFound:
                pass  # not in the session's project: the look-up below says why
        project = self.project_of_task(principal, task_id)
        return project.id, self.shared(project.id, work)

    def report_outcome(self, project_id: str, task: Task) -> None:
        """Tell the events a task reached an end (completed or failed)."""
        if task.status is TaskStatus.COMPLETED:
            self.events.task_completed(project_id)
        elif task.status is TaskStatus.FAILED:
            self.events.task_failed(project_id)


def task_in(tx: ProjectTx, task_id: str) -> Task:
    """A task of the section's project, or NotFound."""
    task = tx.get_task(task_id)
    if task is None:
        raise NotFound("Task not found")
    return task


def type_of(tx: ProjectTx, task: Task) -> TaskType | None:
    """A task's type (None for a task without one)."""
    return tx.get_task_type(task.type_id) if task.type_id else None


def earlier_outcome(tx: IdempotencyRecords, request: Idempotency | None, now: float
                    ) -> dict[str, Any] | None:
    """What the first create under this request's Idempotency-Key made, for a repeat."""
    if request is None:
        return None
    return rules.idempotent_outcome(tx.get_idempotency(request.key), request, now)


def remember(tx: IdempotencyRecords, request: Idempotency | None, now: float,
             outcome: dict[str, Any]) -> None:
    """Keep what a create made under its Idempotency-Key, in the create's own commit."""
    if request is not None:
        tx.put_idempotency(IdempotencyRecord(request.key, request.fingerprint, now, outcome))


def still_there(record: _Record | None, noun: str) -> _Record:
    """A record an earlier create made; it may have been deleted since."""
    if record is None:
        raise NotFound(f"The {noun} created under this Idempotency-Key was deleted since")
    return record


def refuse_taken_name(noun: str, current: str | None, wanted: str | None,
                      find: Callable[[str], object | None]) -> None:
    """Names are unique (per project for task types): 409 when another record has it."""
    if wanted is not None and wanted != current and find(wanted) is not None:
        raise Conflict(f"A {noun} named {wanted} already exists")
