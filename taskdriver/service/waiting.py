"""Long polls: the agents of one process waiting for work in a project share one watcher.

A waiting `next-task` sleeps on an event of its own and holds nothing else: no lock, no
connection, no polling. One watcher thread per project and process follows the project's
changes through the storage watch (this process's commits at once; other processes' and
hosts' through the backend: file signatures, PostgreSQL's LISTEN/NOTIFY). After a change it
asks once how many tasks could be leased now and wakes that many waiters, oldest first,
less those already woken and still trying: a task created while a thousand agents wait
wakes one of them in each process, not a thousand. Nothing is lost to a race: a waiter is
registered before its first look, and one woken while it was still looking simply looks
once more.

The watcher also wakes a waiter when the soonest lease or delayed task comes due (that
waiter's attempt reclaims it), a waiter whose session ended (a newer login: the poll is
answered 401 within `SESSION_CHECK_SECONDS`), and every waiter when the process shuts down.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import Busy, TaskDriverError
from ..events import QueueEvents
from ..storage.base import ChangeWatch

log = logging.getLogger(__name__)

SESSION_CHECK_SECONDS = 1.0  # how soon a waiting poll learns its session was ended
LINGER_SECONDS = 30.0  # a watcher with no waiters left stays this long for the next ones
MIN_RECOUNT_SECONDS = 0.01  # commits closer together than this are counted as one


@dataclass(eq=False)
class Waiter:
    """One waiting request. `session_key` is its agent session's token hash (None for an
    operator). Once woken it looks for work again, unless `ended` holds the error its
    ended session must be answered with, or `closing` says the process is stopping."""

    session_key: str | None
    number: int
    event: threading.Event = field(default_factory=threading.Event)
    ended: TaskDriverError | None = None
    closing: bool = False

    def wait(self, timeout: float) -> bool:
        """Sleep until woken (True) or until `timeout` passes (False)."""
        if not self.event.wait(timeout):
            return False
        self.event.clear()
        return True


# How many tasks could be leased now, and the soonest future moment something comes due.
Availability = Callable[[str, float], tuple[int, float | None]]
# Of the given session keys, those whose session has ended, with the error to answer.
SessionCheck = Callable[[list[str]], dict[str, TaskDriverError]]


class ProjectWatcher:
    """The waiters of one project in this process, and the thread that wakes them."""

    def __init__(self, hub: WaitHub, project_id: str) -> None:
        self.hub = hub
        self.project_id = project_id
        self.waiters: dict[int, Waiter] = {}  # in arrival order
        self.idle_since = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"taskdriver-waiters-{project_id[:8]}")

    def _run(self) -> None:
        hub = self.hub
        try:  # made here, not under the hub's lock: PostgreSQL may start its listener
            watch = hub.watch(self.project_id)
        except TaskDriverError as exc:  # its waiters wait out their time instead
            log.warning("long-poll watcher of project %s: %s", self.project_id, exc)
            with hub.lock:
                hub.watchers.pop(self.project_id, None)
            return
        due_at: float | None = None
        next_session_check = time.monotonic() + SESSION_CHECK_SECONDS
        recount = True  # a new watcher looks once: work may have come before it started
        while not hub.closed.is_set():
            if recount:
                due_at = self._wake_for_work(due_at)
            timeout = min(SESSION_CHECK_SECONDS, max(0.0, next_session_check - time.monotonic()))
            if due_at is not None:
                timeout = min(timeout, max(0.0, due_at - hub.clock()))
            changed = watch.wait(timeout)
            recount = changed or (due_at is not None and hub.clock() >= due_at)
            if recount and changed:
                time.sleep(MIN_RECOUNT_SECONDS)  # let a burst of commits land, count once
            if time.monotonic() >= next_session_check:
                next_session_check = time.monotonic() + SESSION_CHECK_SECONDS
                self._wake_ended_sessions()
                if self._retire_if_idle():
                    return

    def _sleepers(self) -> list[Waiter]:
        with self.hub.lock:
            return [w for w in self.waiters.values() if not w.event.is_set()]

    def _wake_for_work(self, previous_due: float | None) -> float | None:
        """Count what could be leased and wake that many waiters (at least one when a
        lease or delayed task came due, to reclaim it); returns the next due moment."""
        with self.hub.lock:
            if not self.waiters:
                return None
            pending = sum(1 for w in self.waiters.values() if w.event.is_set())
        try:
            available, due_at = self.hub.availability(self.project_id, self.hub.clock())
        except TaskDriverError as exc:  # the project went away, storage failed: look later
            log.warning("long-poll watcher of project %s: %s", self.project_id, exc)
            return None
        came_due = previous_due is not None and self.hub.clock() >= previous_due
        wanted = max(available - pending, 1 if came_due else 0)
        woken = 0
        with self.hub.lock:
            for waiter in self.waiters.values():
                if woken >= wanted:
                    break
                if not waiter.event.is_set():
                    waiter.event.set()
                    woken += 1
        if woken:
            self.hub.events.long_polls_woken(woken)
        return due_at

    def _wake_ended_sessions(self) -> None:
        with self.hub.lock:
            keys = list({w.session_key for w in self.waiters.values() if w.session_key})
        if not keys:
            return
        try:
            ended = self.hub.session_check(keys)
        except TaskDriverError as exc:
            log.warning("long-poll session check failed: %s", exc)
            return
        if not ended:
            return
        with self.hub.lock:
            for waiter in self.waiters.values():
                if waiter.session_key in ended:
                    waiter.ended = ended[waiter.session_key]
                    waiter.event.set()

    def _retire_if_idle(self) -> bool:
        """Leave the hub once no waiter has come for LINGER_SECONDS (atomically with
        registration, so no waiter is ever left with a watcher that is gone)."""
        with self.hub.lock:
            if self.waiters:
                self.idle_since = time.monotonic()
                return False
            if time.monotonic() - self.idle_since < LINGER_SECONDS:
                return False
            del self.hub.watchers[self.project_id]
            return True


class WaitHub:
    """Every long poll of this process, by project; one watcher thread per project."""

    def __init__(self, watch: Callable[[str], ChangeWatch], availability: Availability,
                 session_check: SessionCheck, capacity: int,
                 clock: Callable[[], float] = time.time,
                 events: QueueEvents | None = None) -> None:
        """`capacity`: how many polls may wait at once; one more is refused with Busy (a
        poll queued behind sleeping threads would stall every other request instead)."""
        self.watch = watch
        self.capacity = capacity
        self.count = 0
        self.availability = availability
        self.session_check = session_check
        self.clock = clock
        self.events = events or QueueEvents()
        self.lock = threading.Lock()
        self.watchers: dict[str, ProjectWatcher] = {}
        self.closed = threading.Event()
        self._numbers = itertools.count()

    @contextmanager
    def enter(self, project_id: str, session_key: str | None) -> Iterator[Waiter]:
        """Register a waiter for the project (before its first look, so no change after
        that look is missed) and unregister it when the request is answered."""
        waiter = Waiter(session_key, next(self._numbers))
        if self.closed.is_set():
            waiter.closing = True
            waiter.event.set()
            yield waiter
            return
        with self.lock:
            if self.count >= self.capacity:
                raise Busy()
            self.count += 1
            watcher = self.watchers.get(project_id)
            start = watcher is None
            if watcher is None:
                watcher = self.watchers[project_id] = ProjectWatcher(self, project_id)
            watcher.waiters[waiter.number] = waiter
        if start:
            watcher.thread.start()
        self.events.long_polls_waiting(1)
        try:
            yield waiter
        finally:
            with self.lock:
                watcher.waiters.pop(waiter.number, None)
                watcher.idle_since = time.monotonic()
                self.count -= 1
            self.events.long_polls_waiting(-1)

    def close(self) -> None:
        """Answer every waiting poll now (with no task) and stop the watchers: the
        process is stopping, and a poll that waited out the graceful timeout would be cut
        off instead of answered."""
        self.closed.set()
        with self.lock:
            for watcher in self.watchers.values():
                for waiter in watcher.waiters.values():
                    waiter.closing = True
                    waiter.event.set()
