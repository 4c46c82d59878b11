"""The lease queue: next-task (with its long poll), complete, fail, release, extend, reap.

The queue's writes run in *shared* project sections (`Core.shared`): they hold only the
tasks they change, so agents of one project never wait for each other; a write a
concurrent one made impossible is looked at again in a new section. They read the clock
inside the section once they hold what they change, so the times on a task follow the
order of its commits (one attempt never appears to start before the previous one ended).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import access, controls, rules
from ..answers import AgentLease, Lease, Reaped
from ..dependencies import TaskDetail
from ..errors import FieldError, NotFound
from ..models import IDEMPOTENCY_WINDOW_SECONDS, Principal, Project, Task, TaskStatus, TaskType
from ..storage import ProjectTx
from . import dependencies
from .base import Core, type_of
from .controls import claim_eligible, held_back
from .waiting import SessionCheck, WaitHub


class Queue:
    """Leases of a project's tasks to agents, and what their holders report."""

    def __init__(self, core: Core, session_check: SessionCheck) -> None:
        """`session_check` tells which agent sessions (by token hash) have ended, so a
        waiting long poll of an ended session is answered at once."""
        self.core = core
        self.session_check = session_check
        self.waits = WaitHub(core.storage.watch, self._availability, session_check,
                             core.settings.long_poll_capacity, core.now, core.events)

    @staticmethod
    def _reap(tx: ProjectTx, now: float, lapsed: list[Task] | None = None
              ) -> tuple[Reaped, list[Task]]:
        """Expire every lapsed lease that no other section is changing (`lapsed`: those
        this section already holds, else looked up); returns the counts and the tasks as
        they are now."""
        lapsed = tx.expired_leases(now) if lapsed is None else lapsed
        expired = [t for t in lapsed if rules.lease_expired(t, now)]
        reclaimed = [rules.expire(task, now, type_of(tx, task)) for task in expired]
        for task in reclaimed:
            tx.put_task(task)
        # Their dependents move in this same commit (a lease out of retries failed them).
        released = dependencies.release_dependents(tx, reclaimed, now)
        return Reaped(len(expired), len({t.assigned_to for t in expired})), reclaimed + released

    def _reap_and_purge(self, tx: ProjectTx) -> tuple[Reaped, list[Task]]:
        """The cron job's pass over one project: expired leases, then old idempotency keys."""
        now = self.core.now()
        reaped = self._reap(tx, now)
        tx.purge_idempotency(now - IDEMPOTENCY_WINDOW_SECONDS)
        return reaped

    def _report_reaped(self, project_id: str, counts: Reaped, changed: list[Task]) -> None:
        """Report the reclaimed leases, and the outcomes they and the dependents they
        released reached."""
        if counts.tasks:
            self.core.events.leases_expired(project_id, counts.tasks)
        for task in changed:
            self.core.report_outcome(project_id, task)

    def next_task(self, principal: Principal, agent_name: str, project_ref: str | None,
                  wait_seconds: float = 0.0) -> Lease | None:
        """Resume the agent's live lease, else reap expired leases and lease the oldest
        queued task; with nothing to give, wait up to `wait_seconds` for something.

        While waiting the request holds no lock and no connection: it sleeps until this
        process's watcher of the project wakes it (`waiting.py`), then tries again.
        """
        acting = access.acting_agent(principal, agent_name)
        if project_ref is None:
            if principal.session is None:
                raise FieldError("projectId", "projectId is required with an operator token")
            project_ref = principal.session.project_id
        project = self.core.session_project(principal, project_ref, for_new_work=True)
        # The operator may cap waits below what agents ask (say, for a proxy's idle timeout).
        wait_seconds = min(wait_seconds, self.core.settings.long_poll_max_seconds)
        if wait_seconds <= 0:
            return self._lease_next(project, acting)
        deadline = time.monotonic() + wait_seconds
        session_key = principal.session.token_hash if principal.session else None
        with self.waits.enter(project.id, session_key) as waiter:
            while True:
                lease = self._lease_next(project, acting)
                remaining = deadline - time.monotonic()
                if lease is not None or remaining <= 0 or waiter.closing:
                    return lease
                if not waiter.wait(remaining):
                    return None
                if waiter.ended is not None:
                    raise waiter.ended
                # Ended while it slept (a logout, a newer login), a poll leases nothing:
                # the watcher's check comes once a second, a task may come sooner.
                if session_key is not None and (ended := self.session_check([session_key])):
                    raise ended[session_key]
                # Read again: paused while this poll waited, it leases nothing.
                project = self.core.project(principal, project.id)

    def _lease_next(self, project: Project, acting: str) -> Lease | None:
        """One attempt at next-task: the agent's live lease, else the next due task.

        Claims of one project run side by side: each takes a due task no other section
        holds. Should this agent's other request claim first, the store refuses a second
        running task and the next attempt finds the first one held."""
        def attempt(tx: ProjectTx) -> tuple[TaskDetail | None, tuple[Reaped, list[Task]]]:
            now = self.core.now()
            held, lapsed = tx.held_and_expired(acting, now)
            if held is not None and not rules.lease_expired(held, now):
                return dependencies.detail(tx, held, with_dependents=False), (Reaped(0, 0), [])
            reaped = self._reap(tx, now, lapsed)
            if not controls.project_leases(project):
                return None, reaped
            claimed = claim_eligible(tx, self.core.now)
            leased = None
            if claimed is not None:
                task, task_type, now = claimed
                minutes = rules.lease_minutes(task_type, project)
                leased = rules.claim(task, acting, minutes, now)
                tx.put_task(leased)
                return dependencies.detail(tx, leased, with_dependents=False), reaped
            return None, reaped

        leased, (counts, changed) = self.core.shared(project.id, attempt)
        self._report_reaped(project.id, counts, changed)
        return None if leased is None else Lease(leased.task, project, leased)

    def _availability(self, project_id: str, now: float) -> tuple[int, float | None]:
        """For the long-poll watcher: how many tasks could be leased now, and the soonest
        future moment a lease ends or a delayed task comes due (None: nothing will)."""
        with self.core.storage.global_tx(write=False) as global_tx:
            project = global_tx.get_project(project_id)
        if project is not None and not controls.project_leases(project):
            return 0, None  # nothing to wake waiters for until it is resumed
        with self.core.storage.project_tx(project_id, write=False) as tx:
            available = self._leasable(tx, now)
            moments = [t.lease_expires_at for t in tx.running_tasks()]
            moments.append(tx.next_run_after(now))
        return available, min((m for m in moments if m is not None and m > now), default=None)

    @staticmethod
    def _leasable(tx: ProjectTx, now: float) -> int:
        """Queued and due, less what the fleet controls hold back, plus expired leases
        that will be reclaimed into the queue (and due at once, with no retry delay)."""
        expired = sum(1 for t in tx.running_tasks() if rules.lease_expired(t, now)
                      and rules.has_retries_left(t)
                      and rules.retry_delay(type_of(tx, t), t.retry_count + 1) == 0)
        return (tx.status_counts()[TaskStatus.QUEUED] - tx.delayed_count(now)
                - held_back(tx, now) + expired)

    def peek(self, principal: Principal, project_id: str) -> int:
        """How many tasks could be leased now (see `_leasable`)."""
        project = self.core.project(principal, project_id)
        if not controls.project_leases(project):
            return 0
        with self.core.storage.project_tx(project.id, write=False) as tx:
            return self._leasable(tx, self.core.now())

    def agents(self, principal: Principal, project_id: str) -> list[AgentLease]:
        """The agents holding a live lease in the project, with their tasks."""
        project = self.core.project(principal, project_id)
        with self.core.storage.project_tx(project.id, write=False) as tx:
            now = self.core.now()
            return [AgentLease(t.assigned_to or "", t) for t in tx.running_tasks()
                    if not rules.lease_expired(t, now)]

    def _settle(self, principal: Principal, task_id: str, agent_name: str | None,
                outcome: Callable[[Task, str, float, TaskType | None], Task]) -> Task:
        """Apply a lease holder's outcome (with the task's type, for its retry delay)."""
        def settle(tx: ProjectTx) -> tuple[Task, Task, list[Task]]:
            task = tx.lock_task(task_id)  # only this task: other agents go on meanwhile
            if task is None:
                raise NotFound("Task not found")
            acting = access.acting_agent(principal, agent_name, fallback=task.assigned_to)
            now = self.core.now()
            settled = outcome(task, acting, now, type_of(tx, task))
            released: list[Task] = []
            if settled is not task:
                tx.put_task(settled)
                if settled.status is not task.status:  # its dependents move in this commit
                    released = dependencies.release_dependents(tx, [settled], now)
            return task, settled, released

        project_id, (task, settled, released) = self.core.shared_on_task(principal, task_id,
                                                                         settle)
        if settled is not task and settled.status is not task.status:
            self.core.report_outcome(project_id, settled)
        for moved in released:
            self.core.report_outcome(project_id, moved)
        return settled

    def complete_task(self, principal: Principal, task_id: str, agent_name: str | None,
                      result: Any, outputs: Any) -> Task:
        """The holder reports its task done, with its result and outputs."""
        return self._settle(principal, task_id, agent_name,
                            lambda t, a, now, _: rules.complete(t, a, result, outputs, now))

    def fail_task(self, principal: Principal, task_id: str, agent_name: str | None,
                  error: str, can_retry: bool) -> Task:
        """The holder reports its attempt failed; the task is retried while it may be."""
        return self._settle(principal, task_id, agent_name,
                            lambda t, a, now, kind: rules.fail(t, a, error, can_retry, now, kind))

    def release_task(self, principal: Principal, task_id: str, agent_name: str | None
                     ) -> Task:
        """The holder gives its task back untouched (no attempt, no retry spent)."""
        return self._settle(principal, task_id, agent_name,
                            lambda t, a, now, _: rules.release(t, a, now))

    def extend_lease(self, principal: Principal, task_id: str, agent_name: str | None,
                     minutes: float) -> Task:
        """The holder keeps its task `minutes` longer."""
        return self._settle(principal, task_id, agent_name,
                            lambda t, a, now, _: rules.extend_lease(t, a, minutes, now))

    def report_progress(self, principal: Principal, task_id: str, agent_name: str | None,
                        progress: float | None, message: str | None,
                        extension_minutes: float | None) -> Task:
        """The holder says how far it got, optionally keeping its lease longer."""
        return self._settle(principal, task_id, agent_name,
                            lambda t, a, now, _: controls.report_progress(
                                t, a, progress, message, extension_minutes, now))

    def reap_project(self, principal: Principal, project_id: str) -> Reaped:
        """Reclaim one project's expired leases now (the `cleanup-leases` route)."""
        project = self.core.project(principal, project_id)
        counts, changed = self.core.shared(project.id, lambda tx: self._reap(tx, self.core.now()))
        self._report_reaped(project.id, counts, changed)
        return counts

    def reap(self, project_ids: list[str] | None = None) -> Reaped:
        """The cron job: reclaim expired leases in the given projects (all by default) and
        forget idempotency keys past their 24 hours."""
        if project_ids is None:
            with self.core.storage.global_tx() as tx:
                project_ids = [p.id for p in tx.list_projects()]
                tx.purge_idempotency(self.core.now() - IDEMPOTENCY_WINDOW_SECONDS)
        tasks = agents = 0
        for project_id in project_ids:
            try:
                counts, changed = self.core.shared(project_id, self._reap_and_purge)
            except NotFound:
                continue  # deleted meanwhile
            self._report_reaped(project_id, counts, changed)
            tasks += counts.tasks
            agents += counts.agents
        return Reaped(tasks, agents)

