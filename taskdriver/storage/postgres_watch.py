"""Waiting for work on PostgreSQL: one LISTEN connection per process, shared by waiters.

A transaction that queues a task, or changes the project or a task type (a resume), sends
`pg_notify('taskdriver_work', <project id>)`, which PostgreSQL delivers at commit (and never
for a rollback) to every host's listener.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import psycopg

from .base import ChangeWatch

LISTEN_CHANNEL = "taskdriver_work"
LISTENER_RETRY_SECONDS = 1.0


class Listener:
    """One LISTEN connection per process, on its own thread, counting each project's
    notifications; waiters compare counts under one condition. No request holds it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.changed = threading.Condition()
        self.counts: dict[str, int] = defaultdict(int)
        self.epoch = 0  # bumped on every (re)connection: notifications may have been missed
        self.listening = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self, within: float) -> None:
        """Make sure a LISTEN is active (waiting up to `within` s for the first one)."""
        with self.changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="taskdriver-listen",
                                                daemon=True)
                self._thread.start()
        self.listening.wait(within)

    def marker(self, project_id: str) -> tuple[int, int]:
        with self.changed:
            return self.epoch, self.counts[project_id]

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {LISTEN_CHANNEL}")
                    with self.changed:
                        self.epoch += 1
                        self.changed.notify_all()
                    self.listening.set()
                    while not self._stopped.is_set():
                        for notify in connection.notifies(timeout=LISTENER_RETRY_SECONDS):
                            with self.changed:
                                self.counts[notify.payload] += 1
                                self.changed.notify_all()
            except psycopg.Error:
                self.listening.clear()
                self._stopped.wait(LISTENER_RETRY_SECONDS)

    def stop(self) -> None:
        self._stopped.set()


class PostgresWatch(ChangeWatch):
    """Waits for the listener's count of this project's notifications to move."""

    def __init__(self, listener: Listener, project_id: str) -> None:
        self.listener = listener
        self.project_id = project_id
        self.seen = listener.marker(project_id)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        listener = self.listener
        with listener.changed:
            while True:
                current = (listener.epoch, listener.counts[self.project_id])
                if current != self.seen:
                    self.seen = current
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Without a live LISTEN, look again each second rather than trust silence.
                step = remaining if listener.listening.is_set() else min(
                    remaining, LISTENER_RETRY_SECONDS)
                if not listener.changed.wait(step) and not listener.listening.is_set():
                    return True
