"""The file backend's archive: a project's archived tasks in compressed segment files.

    <project dir>/archive/<segment id>.seg   one segment: blocks of up to BLOCK_TASKS
                                             tasks, each `[4-byte length][zlib(JSON list)]`
    <project dir>/archive/index.sqlite       task id -> (segment, block offset, length)

A segment is written whole, fsynced (file and directory, like the journal) and never
changed; it is deleted whole. Which segments exist is the project's journaled state's
business (`archive_registry.py`): a segment counts only once the journal line that moves
its tasks out of the live store is committed. A crash between writing a segment and that
line leaves a file (and index rows) that no registered segment names: readers ignore it
and the next archiving run sweeps it away. So every task is exactly once live or archived.

Nothing here is loaded into a worker's memory beyond what one read needs: a read by id is
one index lookup and one block (about 64 tasks) decompressed; a listing streams blocks.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import closing
from functools import cache
from pathlib import Path
from typing import Any, cast

import orjson

from ..archiving import ArchivedTask
from ..models import Task
from .codec import decode_archived_task
from .journal_format import fsync_dir, write_all

BLOCK_TASKS = 64
INDEX_NAME = "index.sqlite"
SEGMENT_SUFFIX = ".seg"
_LENGTH = struct.Struct(">I")


class ArchiveFiles:
    """One project's segment files and their id index (one per project and process: see
    `archive_files`)."""

    def __init__(self, project_dir: Path, fsync: bool) -> None:
        self.directory = project_dir / "archive"
        self._fsync = fsync
        self._readers = threading.local()  # each thread's open index connection
        self._opened: list[sqlite3.Connection] = []  # all of them, for `close`
        self._opened_lock = threading.Lock()

    def _reader(self) -> sqlite3.Connection | None:
        """This thread's connection for lookups, kept open (opening one costs more than a
        lookup); None while the project has no archive. A forked child opens its own."""
        cached = getattr(self._readers, "connection", None)
        if cached is not None and cached[0] == os.getpid():
            return cast(sqlite3.Connection, cached[1])
        if not (self.directory / INDEX_NAME).exists():
            return None
        connection = self._index()
        self._readers.connection = (os.getpid(), connection)
        with self._opened_lock:
            self._opened.append(connection)
        return connection

    def close(self) -> None:
        """Close the lookups' connections (storage closing, or the project deleted)."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
            self._readers = threading.local()
        for connection in opened:
            connection.close()

    def _path(self, segment_id: str) -> Path:
        return self.directory / f"{segment_id}{SEGMENT_SUFFIX}"

    def _index(self) -> sqlite3.Connection:
        """The id index (made on first use); a connection per call: few calls, any thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.directory / INDEX_NAME, timeout=30.0,
                                     check_same_thread=False)
        connection.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'OFF'}")
        connection.execute("CREATE TABLE IF NOT EXISTS archived (id TEXT PRIMARY KEY, "
                           "segment TEXT NOT NULL, offset INTEGER NOT NULL, "
                           "length INTEGER NOT NULL) WITHOUT ROWID")
        connection.execute("CREATE INDEX IF NOT EXISTS archived_by_segment "
                           "ON archived (segment)")
        return connection

    def write(self, segment_id: str, tasks: Sequence[Task]) -> None:
        """Write a segment holding `tasks` and index them, durably (before the journal line
        that registers the segment is written)."""
        rows: list[tuple[str, str, int, int]] = []
        chunks: list[bytes] = []
        offset = 0
        for start in range(0, len(tasks), BLOCK_TASKS):
            block_tasks = tasks[start:start + BLOCK_TASKS]
            block = zlib.compress(orjson.dumps(list(block_tasks)), 1)
            offset += _LENGTH.size
            rows.extend((task.id, segment_id, offset, len(block)) for task in block_tasks)
            chunks += [_LENGTH.pack(len(block)), block]
            offset += len(block)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(segment_id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, b"".join(chunks))
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self._fsync:
            fsync_dir(self.directory)
        with closing(self._index()) as index, index:
            index.executemany("INSERT OR REPLACE INTO archived VALUES (?, ?, ?, ?)", rows)

    def locate(self, task_id: str) -> tuple[str, int, int] | None:
        """(segment id, block offset, block length) of an indexed task, if any."""
        index = self._reader()
        if index is None:
            return None
        row = index.execute("SELECT segment, offset, length FROM archived WHERE id = ?",
                            (task_id,)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    def read(self, segment_id: str, offset: int, length: int, task_id: str
             ) -> ArchivedTask | None:
        """The task with this id from one block of a segment."""
        try:
            with open(self._path(segment_id), "rb") as handle:
                handle.seek(offset)
                block = handle.read(length)
        except FileNotFoundError:
            return None  # deleted since the lookup
        raw = next((r for r in _decoded(block) if r["id"] == task_id), None)
        return None if raw is None else decode_archived_task(raw)

    def tasks(self, segment_id: str) -> Iterator[ArchivedTask]:
        """Every task of a segment, in the order written, one block in memory at a time."""
        with open(self._path(segment_id), "rb") as handle:
            while header := handle.read(_LENGTH.size):
                (length,) = _LENGTH.unpack(header)
                for raw in _decoded(handle.read(length)):
                    yield decode_archived_task(raw)

    def delete(self, segment_id: str) -> None:
        """Remove a segment's index rows, then its file (once it is no longer registered).

        In that order, and written in the opposite one, so that index rows never outlive
        their file: a crash in between leaves a file, which `sweep` finds."""
        with closing(self._index()) as index, index:
            index.execute("DELETE FROM archived WHERE segment = ?", (segment_id,))
        self._path(segment_id).unlink(missing_ok=True)

    def sweep(self, registered: set[str]) -> int:
        """Delete segments no registered segment names (left by a crash); how many. Only
        the file names are listed: no index row lives without its file (see `delete`)."""
        if not self.directory.exists():
            return 0
        orphans = {path.name.removesuffix(SEGMENT_SUFFIX)
                   for path in self.directory.glob(f"*{SEGMENT_SUFFIX}")} - registered
        for segment_id in orphans:
            self.delete(segment_id)
        return len(orphans)


@cache
def archive_files(project_dir: Path, fsync: bool) -> ArchiveFiles:
    """The one `ArchiveFiles` of a project directory in this process (its lookups keep
    their index connections open)."""
    return ArchiveFiles(project_dir, fsync)


def _decoded(block: bytes) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = orjson.loads(zlib.decompress(block))
    return records
