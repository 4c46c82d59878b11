"""Snapshot + append-only journal for one directory, shared safely by many processes.

A store directory holds `snapshot.json` (every record as of generation G) and
`journal.G.jsonl` (one line per transaction committed since): the format is in
`journal_format.py`.

Every process keeps the decoded state in memory and, each time it takes the store's lock,
reads only the journal bytes appended since it last looked (incremental replay). A commit
appends one line, so a write costs the size of what changed, never the size of the store.

Durability (group commit by early lock release, `group_commit.py`): the line is written
under the lock, but fsynced after the lock is let go, and the request answers only once
that fsync returns; meanwhile the next writer can already take the lock. Readers keep the
same rule: a section answers only after what it saw is on disk (`section`).

When the journal outgrows the snapshot, the committer writes a new snapshot (generation
G+1) and starts an empty journal: the cost is amortised over as many writes as the
snapshot holds records. It outgrows it sooner when the state has shrunk since (a project's
finished tasks archived): the journal is then weighed against what a snapshot of the state
now would take, so a store that drops most of its records soon starts from a small
snapshot again, and a cold start follows the live records rather than the ones just gone.

Crash safety: a line is a whole transaction; a process killed mid-append leaves a torn
last line, which the next lock holder cuts off (nobody acknowledged it). A snapshot is
written to a temporary file, fsynced and renamed over the old one, so a crash at any
instant leaves either the old snapshot with its journal or the new one.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from ..errors import NotFound, StorageError
from .group_commit import DurableMark
from .journal_format import (
    SNAPSHOT_NAME,
    Change,
    JournaledState,
    encode_transaction,
    fsync_dir,
    journal_path,
    load_snapshot,
    read_generation,
    replay,
    write_all,
    write_snapshot,
)
from .process_lock import ProcessLock

log = logging.getLogger(__name__)

MIN_COMPACT_BYTES = 4 * 1024 * 1024


class JournaledStore:
    """One directory's state, kept current in this process under an inter-process lock."""

    def __init__(self, directory: Path, lock_path: Path,
                 new_state: Callable[[], JournaledState], fsync: bool = True) -> None:
        self.directory = directory
        # As a string, built once: every request stats it (pathlib would rebuild it each time).
        self._snapshot_path = str(directory / SNAPSHOT_NAME)
        self._new_state = new_state
        self._fsync = fsync
        # One lock per path per process, behind a thread lock: threads of one process
        # queue on the thread lock, processes on the file lock.
        self._file_lock = ProcessLock(lock_path)
        self._thread_lock = threading.RLock()
        self._state: JournaledState | None = None
        self._snapshot_sig: tuple[int, int, int] | None = None
        self._generation = 0
        self._journal: Any = None  # binary file object open for append+read
        self._offset = 0
        self._snapshot_bytes = 0
        self._snapshot_records = 0
        # Notified after each commit of this process, so its own waiters wake at once.
        self.committed = threading.Condition()
        self._journal_path = partial(journal_path, directory)
        self._durable = DurableMark(self._journal_path, fsync)

    # -- access --------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[JournaledState]:
        """Hold the store's lock with the in-memory state brought up to date.

        Raises NotFound when the store's directory has no snapshot (never created, or
        deleted by another process).
        """
        with self._thread_lock, self._file_lock:
            yield self._catch_up()

    @contextmanager
    def section(self, write: bool) -> Iterator[JournaledState]:
        """`locked()` for a write, `reading()` for a read; then, with every lock let go,
        wait until all the section saw or wrote is on disk. Only a section that ends
        without an exception waits: an error answer acknowledges nothing."""
        with self.locked() if write else self.reading() as state:
            yield state
            position = (self._generation, self._offset)
        self._durable.make_durable(position)

    @contextmanager
    def reading(self) -> Iterator[JournaledState]:
        """The up-to-date state for reading only.

        When neither the snapshot nor the journal changed since this process last caught
        up, nobody committed anything meanwhile and the state is current: it is used without
        the inter-process lock (two stat calls instead of a lock round trip). A write
        acknowledged before this call began has changed the journal's size, so it is seen.
        """
        with self._thread_lock:
            if self._state is not None and self._unchanged():
                yield self._state
                return
        with self.locked() as state:
            yield state

    def _unchanged(self) -> bool:
        try:
            st = os.stat(self._snapshot_path)
        except FileNotFoundError:
            return False
        return ((st.st_ino, st.st_mtime_ns, st.st_size) == self._snapshot_sig
                and os.fstat(self._journal.fileno()).st_size == self._offset)

    def signature(self) -> tuple[int, ...]:
        """What changes with every commit of any process: the snapshot's identity and the
        current journal's size. Two `stat` calls and no lock, so a waiter may poll it.

        A file that cannot be read (being compacted or deleted, or any other OSError) reads
        as a change: the waiter wakes and looks, and the look reports what is wrong."""
        try:
            st = os.stat(self._snapshot_path)
            journal_size = os.stat(self._journal_path(self._generation)).st_size
        except OSError:
            return (-1,)
        return (st.st_ino, st.st_mtime_ns, st.st_size, journal_size)

    def holds(self, kind_check: Callable[[JournaledState], bool]) -> bool:
        """Ask the state this process already holds, without any I/O (False if none).

        Takes no lock, so it never waits behind a writer's fsync; the state may be a commit
        behind. Fit for "which store is this id's": ids never move between stores, and a
        caller then reads the record in a current section, where a deleted one is missed.
        """
        state = self._state
        return state is not None and kind_check(state)

    # -- creation and removal ------------------------------------------------------------

    def initialise(self, changes: list[Change], only_if_missing: bool = False) -> None:
        """Write the store's first snapshot holding `changes`.

        With `only_if_missing`, a store another process initialised meanwhile is kept.
        """
        with self._thread_lock, self._file_lock:
            if only_if_missing and (self.directory / SNAPSHOT_NAME).exists():
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            state = self._new_state()
            for kind, key, record in changes:
                state.apply(kind, key, record)
            try:
                write_snapshot(self.directory, state, 1, self._fsync)
                if self._fsync:  # the new directory's own entry must survive a crash too
                    fsync_dir(self.directory.parent)
            except OSError as exc:
                raise StorageError(f"cannot write storage: {exc.strerror or exc}") from exc
            finally:
                self._forget()

    def destroy(self) -> None:
        """Remove the store's files; other processes see NotFound from then on."""
        with self._thread_lock, self._file_lock:
            snapshot = self.directory / SNAPSHOT_NAME
            if snapshot.exists():
                snapshot.unlink()  # first: from here on the store is gone for everyone
            if self.directory.exists():  # with what lives beside the store (its archive)
                shutil.rmtree(self.directory)
            self._forget()

    # -- reading ---------------------------------------------------------------------------

    def _forget(self) -> None:
        if self._journal is not None:
            self._journal.close()
        self._state = None
        self._snapshot_sig = None
        self._journal = None
        self._offset = 0

    def close(self) -> None:
        """Close the journal and lock files this process keeps open."""
        with self._thread_lock:
            self._forget()
            self._file_lock.close()

    def invalidate(self) -> None:
        """Drop the in-memory state (after a failed transaction); the next lock reloads."""
        with suppress(OSError):
            self._forget()

    def _catch_up(self) -> JournaledState:
        snapshot_path = self.directory / SNAPSHOT_NAME
        try:
            st = os.stat(snapshot_path)
        except FileNotFoundError:
            self._forget()
            raise NotFound() from None
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        stale = self._state is None or (sig != self._snapshot_sig
                                        and not self._adopt_compaction(snapshot_path, sig))
        if stale:
            self._load_snapshot(snapshot_path, sig)
        self._replay_tail()
        assert self._state is not None
        return self._state

    def _adopt_compaction(self, path: Path, sig: tuple[int, int, int]) -> bool:
        """Follow another process's compaction without re-reading the whole snapshot.

        A compaction snapshots exactly the old snapshot plus the whole old journal. So if we
        can still read the old journal to its end (our descriptor outlives its unlink) and
        the new snapshot is the very next generation, our state already equals it.
        """
        self._replay_tail()
        journal_size = os.fstat(self._journal.fileno()).st_size
        if self._offset != journal_size or read_generation(path) != self._generation + 1:
            return False
        self._switch_to(self._generation + 1, sig)
        return True

    def _switch_to(self, generation: int, sig: tuple[int, int, int]) -> None:
        """Make `generation` current: its journal open from the start, its snapshot known."""
        if self._journal is not None:
            self._journal.close()
        # Held open for the store's lifetime (closed by _forget): no context manager.
        # Unbuffered: every append is one write of a whole line, nothing waits in a buffer.
        self._journal = open(self._journal_path(generation), "a+b", buffering=0)  # noqa: SIM115
        self._generation = generation
        self._offset = 0
        self._snapshot_sig = sig
        self._snapshot_bytes = sig[2]
        assert self._state is not None  # equal to the snapshot just loaded, written or adopted
        self._snapshot_records = self._state.record_count()
        _keep_out_of_gc_scans()  # a store just loaded, or as big as its new snapshot

    def _load_snapshot(self, path: Path, sig: tuple[int, int, int]) -> None:
        self._forget()
        state = self._new_state()
        generation = load_snapshot(path, state)
        self._state = state
        self._switch_to(generation, sig)

    def _replay_tail(self) -> None:
        journal = self._journal
        size = os.fstat(journal.fileno()).st_size
        if size == self._offset:
            return
        journal.seek(self._offset)
        tail = journal.read(size - self._offset)
        assert self._state is not None
        position = replay(tail, self._state)
        self._offset += position
        if position < len(tail):
            # We hold the lock, so no writer is active: whatever follows the last good line
            # was never acknowledged. Cut it so the next append starts on a clean line.
            journal.truncate(self._offset)
            self._sync(journal)

    # -- writing ---------------------------------------------------------------------------

    def _sync(self, journal: Any) -> None:
        if self._fsync:
            os.fsync(journal.fileno())

    def append(self, changes: list[Change]) -> None:
        """Append one transaction; call while holding `locked()` (inside `section`, which
        fsyncs it once the lock is let go).

        If it raises (a full disk, say), nothing was acknowledged: whatever part of the line
        reached the file is cut off again, and the in-memory state (which already holds the
        changes) is dropped, to be reloaded from disk by the next lock holder. The journal
        is unbuffered, so closing it can never retry a failed write and raise again.
        """
        try:
            line = encode_transaction(changes)
        except orjson.JSONEncodeError as exc:
            self.invalidate()
            raise StorageError(f"cannot write storage: {exc}") from exc
        try:
            write_all(self._journal.fileno(), line)
        except OSError as exc:
            with suppress(OSError):  # a shorter file needs no space; the next lock cuts it
                os.ftruncate(self._journal.fileno(), self._offset)
            self.invalidate()
            raise StorageError(f"cannot write storage: {exc.strerror or exc}") from exc
        self._offset += len(line)
        with self.committed:
            self.committed.notify_all()
        if self._offset > max(MIN_COMPACT_BYTES, self._snapshot_bytes_now()):
            try:
                self._compact()
            except OSError as exc:  # the line is written; the old snapshot stays valid
                log.warning("compaction of %s failed: %s", self.directory, exc)
                self.invalidate()

    def _snapshot_bytes_now(self) -> int:
        """About what a snapshot of the state would take now: the last snapshot's size, or
        less in proportion when records have gone since (never more: a growing store
        compacts as it always did)."""
        assert self._state is not None
        records = self._state.record_count()
        if records >= self._snapshot_records:
            return self._snapshot_bytes
        return self._snapshot_bytes * records // self._snapshot_records

    def _compact(self) -> None:
        state = self._state
        assert state is not None
        old_journal = Path(self._journal_path(self._generation))
        write_snapshot(self.directory, state, self._generation + 1, self._fsync)
        old_journal.unlink(missing_ok=True)
        st = os.stat(self.directory / SNAPSHOT_NAME)
        self._switch_to(self._generation + 1, (st.st_ino, st.st_mtime_ns, st.st_size))


def _keep_out_of_gc_scans() -> None:
    """Move what is alive now (a store's records: ~10 objects a task) out of the cyclic
    garbage collector's sight, each time a store starts a generation (loaded, compacted,
    or following another process's compaction: at most once per snapshot's worth of
    writes).

    The records live long and hold no reference cycles (reference counting frees a
    replaced one at once), yet every full collection walked all of them: at 100,000 tasks
    that made a bulk load of 10,000 more almost twice as slow. Young garbage is collected
    first so that no cycle is frozen with it. What else is alive at that moment (the
    request being served) is frozen too, and if it ends up in a reference cycle it is never
    collected: some kilobytes per snapshot's worth of writes.
    """
    gc.collect(1)
    gc.freeze()
