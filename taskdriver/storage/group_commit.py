"""Group commit by early lock release: fsync a journal after its lock is let go.

A writer appends its line under the store's lock and fsyncs only once the lock is free, so
the next writer can already append while this one waits for the disk: the fsyncs of
concurrent writers overlap and the filesystem folds them into one journal commit. Nothing
acknowledged can be lost: an fsync makes the whole file durable up to where it began, so a
line that later writers built on is on disk before any of them answers.

`DurableMark` remembers how far this process knows a journal is on disk, so a request whose
lines someone already synced (a read of settled state, most of all) syncs nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from ..errors import StorageError

Position = tuple[int, int]
"""(generation, byte offset) in a store's journals."""


class DurableMark:
    """How far this process knows a store's journal is on disk, and the fsync that moves
    that mark."""

    def __init__(self, journal_path: Callable[[int], str], fsync: bool) -> None:
        self._journal_path = journal_path
        self._fsync = fsync
        self._durable: Position = (0, 0)
        self._lock = threading.Lock()

    def make_durable(self, position: Position) -> None:
        """Return once the journal of generation `position[0]` is on disk up to
        `position[1]`, fsyncing it unless this process knows it already is.

        Opens the journal by name: this process may have moved on to a newer generation
        meanwhile. A journal that is gone was compacted away (its lines are in a snapshot
        that was on disk before the old journal was removed) or its store was deleted.
        """
        generation, offset = position
        durable_generation, durable_offset = self._durable
        if not self._fsync or (generation == durable_generation and offset <= durable_offset):
            return
        try:
            fd = os.open(self._journal_path(generation), os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            raise StorageError(f"cannot write storage: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
        with self._lock:
            if position > self._durable:
                self._durable = position
