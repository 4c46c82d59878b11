"""The file backend's record of a project's archive segments, kept in its journaled state.

A segment is registered (and its tasks leave the live store) in one journal line, so the
registry is the truth of what the archive holds (`archive_files.py`). It is small: one
record per segment of `archiving.ARCHIVE_CHUNK` tasks, with the counts that stats and batch
progress add to the live ones.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..archiving import ArchiveSegment

ARCHIVE = "archive_segment"  # the journal's kind for a segment record


class ArchiveRegistry:
    """Registered segments in archive order, with their counts summed."""

    def __init__(self) -> None:
        self.segments: dict[str, ArchiveSegment] = {}
        self.counts: Counter[str] = Counter()  # status value -> tasks
        self.batches: dict[str, Counter[str]] = {}  # batch id -> status value -> tasks

    @staticmethod
    def decode(raw: dict[str, Any]) -> ArchiveSegment:
        return ArchiveSegment(**raw)

    def apply(self, key: str, segment: ArchiveSegment | None) -> None:
        """Register a segment, or forget one (None) with its counts."""
        old = self.segments.pop(key, None)
        if old is not None:
            self._add(old, -1)
        if segment is not None:
            self.segments[key] = segment
            self._add(segment, 1)

    def _add(self, segment: ArchiveSegment, sign: int) -> None:
        self.counts.update({s: sign * n for s, n in segment.counts.items()})
        for batch_id, counts in segment.batches.items():
            batch = self.batches.setdefault(batch_id, Counter())
            batch.update({s: sign * n for s, n in counts.items()})
            if not any(batch.values()):
                del self.batches[batch_id]
