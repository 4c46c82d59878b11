"""Notice of changes to a file-backed project, for a request waiting for work."""

from __future__ import annotations

import time

from .base import ChangeWatch
from .journal import JournaledStore

# How often a watch looks for other processes' commits. Only the long-poll watcher of a
# project (one per process, while agents wait there) holds a watch, so 40 looks a second
# (two `stat` calls each) cost next to nothing, and a task created through another worker
# reaches a waiting agent within about 25 ms.
WATCH_POLL_SECONDS = 0.025


class FileWatch(ChangeWatch):
    """Waits on this process's commit condition of the project's store, and polls the
    signatures (two `stat` calls each) of that store and of the global one every
    WATCH_POLL_SECONDS for commits of other processes.

    The global store holds the project itself: resuming a paused project changes nothing
    beside its tasks, yet may make them leasable, so its waiters must hear of it too."""

    def __init__(self, store: JournaledStore, global_store: JournaledStore) -> None:
        self.store = store
        self.global_store = global_store
        self.seen = self._signature()

    def _signature(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return self.store.signature(), self.global_store.signature()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.store.committed:
            while True:
                current = self._signature()
                if current != self.seen:
                    self.seen = current
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.store.committed.wait(min(WATCH_POLL_SECONDS, remaining))
