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
    """Waits on this process's commit condition, and polls the store's signature (two
    `stat` calls) every WATCH_POLL_SECONDS for commits of other processes."""

    def __init__(self, store: JournaledStore) -> None:
        self.store = store
        self.seen = store.signature()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.store.committed:
            while True:
                current = self.store.signature()
                if current != self.seen:
                    self.seen = current
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.store.committed.wait(min(WATCH_POLL_SECONDS, remaining))
