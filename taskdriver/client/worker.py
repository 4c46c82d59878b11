"""The agent loop, as rq's and celery's workers have it: fetch, run, heartbeat, report.

`Worker` is one agent name's loop; the policy comes in from outside: a `Handler` that does
a task, a shared `Budget` of tasks, how long an empty queue is waited for, and two events a
signal handler sets (stop taking tasks; abandon the running ones). `run_fleet` runs several
workers at once, each under its own agent name, each with its own session.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .core import Client
from .errors import ApiError
from .queue import MAX_WAIT_SECONDS
from .types import Lease, Task


@dataclass(frozen=True)
class Outcome:
    """What doing a task came to: completed with a result, or failed with an error."""

    completed: bool
    result: str | None = None
    outputs: object = None
    error: str | None = None
    can_retry: bool = True


class GiveBack(Exception):
    """Raised by a handler that did not do its task: the task goes back to the queue
    untouched (`release`: no attempt, no retry spent) and the whole fleet takes no more
    tasks. `fatal` (the command cannot start, say) also ends the fleet with this error."""

    def __init__(self, reason: str, fatal: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal


class Cancelled(Exception):
    """Raised by a handler that stopped its task because an operator cancelled it: nothing
    is reported for the task (it is `cancelled` already)."""


@dataclass(frozen=True)
class Job:
    """What a handler gets besides its lease: two events it should stop soon after (the
    fleet abandons its running tasks: raise GiveBack; an operator cancelled this task:
    raise Cancelled), and a way to report progress (0-100 and/or a message)."""

    abandoning: threading.Event
    cancelled: threading.Event
    report_progress: Callable[[float | None, str | None], None]


Handler = Callable[[Lease, str, Job], Outcome]
"""Does one leased task (as the named agent), watching its `Job`'s events."""


@dataclass
class Budget:
    """How many tasks the whole fleet may still take (None: no limit)."""

    remaining: int | None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        with self.lock:
            if self.remaining is None:
                return True
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True

    def give_back(self) -> None:
        with self.lock:
            if self.remaining is not None:
                self.remaining += 1


@dataclass
class Tally:
    """What a fleet did, for the summary line."""

    completed: int = 0
    failed: int = 0
    lost: int = 0
    released: int = 0
    cancelled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)


@dataclass
class Signals:
    """Set by the signal handler: `stopping` takes no more tasks, `abandoning` ends the
    running ones (they are released, untouched, so another agent does them)."""

    stopping: threading.Event = field(default_factory=threading.Event)
    abandoning: threading.Event = field(default_factory=threading.Event)


class Worker:
    """One agent name's loop over the queue."""

    def __init__(self, client: Client, handler: Handler, *, budget: Budget, tally: Tally,
                 signals: Signals, empty_wait: float | None,
                 say: Callable[[str], None]) -> None:
        self.client = client
        self.agent = client.agent_name or ""
        self.handler = handler
        self.budget = budget
        self.tally = tally
        self.signals = signals
        self.empty_wait = empty_wait
        self.say = say
        self.polling = False  # waiting in a long poll, holding no task

    def run(self) -> None:
        """Work until stopped, out of budget, or the queue stayed empty for `empty_wait`;
        a newer login under this agent's name (another `work`) ends it with a line."""
        try:
            self._loop()
        except ApiError as exc:
            if not exc.session_replaced:
                raise
            self.say(f"{self.agent}: stopping, another process took over this agent name: "
                     f"{exc.message}")

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while not self.signals.stopping.is_set():
            if not self.budget.take():
                return
            poll = MAX_WAIT_SECONDS
            if self.empty_wait is not None:
                poll = min(poll, self.empty_wait - (time.monotonic() - idle_since))
                if poll <= 0:
                    self.budget.give_back()
                    return
            self.polling = True
            try:
                lease = self.client.next_lease(wait_seconds=max(0.0, poll))
            except ApiError:
                self.budget.give_back()
                if self.signals.stopping.is_set() and self.client.logged_out:
                    return  # its poll was ended on purpose: `work` is stopping
                raise
            finally:
                self.polling = False
            if lease is None:
                self.budget.give_back()
                continue
            if self.signals.stopping.is_set():  # told to stop while its long poll waited
                self.budget.give_back()
                self._give_back(lease["task"], GiveBack("work is stopping"))
                return
            self._do(lease)
            idle_since = time.monotonic()

    def _do(self, lease: Lease) -> None:
        started = time.monotonic()
        task = lease["task"]
        task_id = task["id"]
        cancelled = threading.Event()
        job = Job(self.signals.abandoning, cancelled,
                  lambda progress, message: self._report(task_id, progress, message, cancelled))
        with self.client.keep_lease(task, on_cancel=cancelled.set) as keeper:
            outcome = self._run_handler(lease, job)
        if isinstance(outcome, GiveBack):  # released once the keeper stopped extending
            self._give_back(task, outcome)
            return
        if isinstance(outcome, Cancelled):
            self._cancelled(task_id, "its command was stopped")
            return
        took = time.monotonic() - started
        try:
            if outcome.completed:
                self.client.complete_task(task["id"], outcome.result, outcome.outputs)
                self.tally.count("completed")
                self.say(f"done    {task_id} by {self.agent} in {took:.1f}s")
            else:
                after = self.client.fail_task(task["id"], outcome.error or "failed",
                                              outcome.can_retry)
                self.tally.count("failed")
                fate = "will retry" if after["status"] == "queued" else "failed for good"
                self.say(f"failed  {task_id} by {self.agent} in {took:.1f}s ({fate}): "
                         f"{_one_line(outcome.error)}")
        except ApiError as exc:
            if exc.status != 409:
                raise
            if exc.task_cancelled:  # cancelled as the command finished: nothing to report
                self._cancelled(task_id, "its outcome was not reported")
                return
            self.tally.count("lost")  # the lease lapsed and the task went to another agent
            reason = keeper.error.message if keeper.error else exc.message
            self.say(f"lost    {task_id} by {self.agent}: {reason}")

    def _run_handler(self, lease: Lease, job: Job) -> Outcome | GiveBack | Cancelled:
        try:
            return self.handler(lease, self.agent, job)
        except (GiveBack, Cancelled) as stopped:
            return stopped

    def _cancelled(self, task_id: str, what: str) -> None:
        self.tally.count("cancelled")
        self.say(f"cancelled {task_id} by an operator ({self.agent}): {what}")

    def _report(self, task_id: str, progress: float | None, message: str | None,
                cancelled: threading.Event) -> None:
        """Send a progress report; best effort, but one refused because the task was
        cancelled stops the task as the lease keeper would."""
        try:
            self.client.report_progress(task_id, progress, message)
        except ApiError as exc:
            if exc.task_cancelled:
                cancelled.set()

    def _give_back(self, task: Task, give_back: GiveBack) -> None:
        """Release the task untouched and stop the fleet; a fatal reason ends it in error."""
        self.signals.stopping.set()
        try:
            self.client.release_task(task["id"])
        except ApiError as exc:
            if exc.status != 409:
                raise
            self.tally.count("lost")  # the lease lapsed already: the reaper requeues it
            self.say(f"lost    {task['id']} by {self.agent}: {exc.message}")
        else:
            self.tally.count("released")
            self.say(f"gave back {task['id']} by {self.agent} (no attempt counted): "
                     f"{give_back.reason}")
        if give_back.fatal:
            raise give_back


def run_fleet(make_client: Callable[[str], Client], names: list[str], handler: Handler, *,
              budget: Budget, signals: Signals, empty_wait: float | None,
              say: Callable[[str], None]) -> tuple[Tally, list[BaseException]]:
    """Run one Worker per agent name on its own thread; returns the tally and any error
    that ended a worker (the others keep going)."""
    tally = Tally()
    errors: list[BaseException] = []
    workers = [Worker(make_client(name), handler, budget=budget, tally=tally, signals=signals,
                      empty_wait=empty_wait, say=say) for name in names]

    def work(worker: Worker) -> None:
        try:
            worker.run()
        except BaseException as exc:  # reported by the caller, once every worker is done
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,), name=worker.agent, daemon=True)
               for worker in workers]
    for thread in threads:
        thread.start()
    ended: set[int] = set()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)  # short joins keep the main thread free to take signals
            if signals.stopping.is_set():
                _end_idle_polls(workers, ended)
    return tally, errors


def _end_idle_polls(workers: list[Worker], ended: set[int]) -> None:
    """Log out each worker that waits in a long poll with no task: the server answers that
    poll (401, nothing leased) within about a second, instead of `work` waiting it out for up
    to 30 s after Ctrl-C. A worker running a task is left to finish it."""
    for number, worker in enumerate(workers):
        if number in ended or not worker.polling:
            continue
        ended.add(number)
        # The server gone or the session ended already: the poll ends anyway.
        with contextlib.suppress(ApiError):
            worker.client.logout()


def _one_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
