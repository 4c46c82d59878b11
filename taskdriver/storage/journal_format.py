"""The on-disk format of a journaled store: its snapshot and its journal lines.

    snapshot.json        {"generation": G}, then one [kind, record] line per record;
                         replaced atomically by rename
    journal.G.jsonl      one {"c": [[kind, key, record or null], ...]} line per committed
                         transaction since that snapshot

Only reading and writing these files lives here; when to write them, under which lock, and
when a line counts as durable is `journal.JournaledStore`'s business.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson

SNAPSHOT_NAME = "snapshot.json"

Change = tuple[str, str, Any]
"""(kind, key, record or None for a deletion): the unit a transaction is made of."""


class JournaledState(Protocol):
    """What a store needs from the in-memory state it keeps."""

    def apply(self, kind: str, key: str, record: Any) -> None:
        """Put (record not None) or delete one record, keeping every index right."""

    def decode(self, kind: str, raw: Any) -> Any:
        """Turn a record read from disk back into its object."""

    def to_snapshot(self) -> dict[str, Iterable[Any]]:
        """Every live record by kind, ready for orjson (kinds in the order to load them)."""

    def record_count(self) -> int:
        """How many records `to_snapshot` would write (compaction weighs it against the
        snapshot it last wrote)."""


def journal_path(directory: Path, generation: int) -> str:
    """The journal file of `generation`, as a string (built on every request's path)."""
    return f"{directory}/journal.{generation}.jsonl"


def read_generation(snapshot_path: Path) -> int:
    """The generation a snapshot starts, from its first line only."""
    with open(snapshot_path, "rb") as snapshot:
        return int(orjson.loads(snapshot.readline())["generation"])


def load_snapshot(snapshot_path: Path, state: JournaledState) -> int:
    """Apply every record of the snapshot to `state`; the snapshot's generation.

    One record per line, decoded as it is read: the raw JSON of 100,000 tasks is never
    held in memory all at once."""
    with open(snapshot_path, "rb") as snapshot:
        generation = int(orjson.loads(snapshot.readline())["generation"])
        for line in snapshot:
            kind, raw_record = orjson.loads(line)
            record = state.decode(kind, raw_record)
            state.apply(kind, record.id, record)
    return generation


def write_snapshot(directory: Path, state: JournaledState, generation: int,
                   fsync: bool) -> None:
    """Replace the directory's snapshot with `state` as `generation`, crash-safely: written
    to a temporary file, fsynced and renamed over the old one, so a crash at any instant
    leaves either the old snapshot with its journal or the new one. Creates the new
    generation's (empty) journal first."""
    temporary = directory / f"{SNAPSHOT_NAME}.tmp"
    try:
        with open(temporary, "wb") as handle:
            handle.write(orjson.dumps({"generation": generation}) + b"\n")
            for kind, records in state.to_snapshot().items():
                handle.writelines(orjson.dumps([kind, record]) + b"\n" for record in records)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)  # a half-written snapshot only takes space
        raise
    # The new journal must exist before the snapshot that names it, so that a reader
    # never opens (and so creates) a journal for a generation that was superseded.
    open(journal_path(directory, generation), "ab").close()
    os.replace(temporary, directory / SNAPSHOT_NAME)
    if fsync:
        fsync_dir(directory)


def encode_transaction(changes: list[Change]) -> bytes:
    """One transaction as its journal line (newline included); orjson.JSONEncodeError for a
    record orjson cannot write."""
    return orjson.dumps({"c": changes}) + b"\n"


def replay(tail: bytes, state: JournaledState) -> int:
    """Apply each whole transaction line of `tail` to `state`, in order; how many bytes of
    `tail` they took.

    Stops at the first line that is torn (no newline: the writer died before finishing it)
    or garbled: nothing after it can have been acknowledged.
    """
    position = 0
    while position < len(tail):
        end = tail.find(b"\n", position)
        if end < 0:
            break
        try:
            changes = orjson.loads(tail[position:end])["c"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            break
        for kind, key, raw_record in changes:
            state.apply(kind, key, None if raw_record is None
                        else state.decode(kind, raw_record))
        position = end + 1
    return position


def write_all(fd: int, data: bytes) -> None:
    """Write every byte (a raw write may take only part of them) or raise."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(path: Path) -> None:
    """Make the entries of a directory (a new or renamed file in it) survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
