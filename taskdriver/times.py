"""The one time format of the API and the logs: RFC 3339, UTC, milliseconds, `Z`."""

from __future__ import annotations

from datetime import datetime, timezone


def rfc3339(seconds: float) -> str:
    """Format POSIX seconds, e.g. `2024-01-01T12:00:00.000Z`."""
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
