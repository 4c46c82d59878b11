"""The one time format of the API and the logs: RFC 3339, UTC, milliseconds, `Z`."""

from __future__ import annotations

from datetime import datetime, timezone


def rfc3339(seconds: float) -> str:
    """Format POSIX seconds, e.g. `2024-01-01T12:00:00.000Z`.

    Remembers the last moment it formatted: the tasks of one bulk create, and a task's
    `createdAt` and `updatedAt`, mostly share one, and a 1,000-task answer formats 2,000.
    """
    global _last
    last_seconds, last_text = _last
    if seconds == last_seconds:
        return last_text
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    _last = (seconds, text)  # one tuple, swapped whole: safe across threads
    return text


_last: tuple[float | None, str] = (None, "")
