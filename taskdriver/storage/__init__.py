"""Storage backends behind one interface (`base.Storage`); `open_storage` picks one by URL."""

from __future__ import annotations

from pathlib import Path

from ..errors import StorageError
from .base import GlobalTx, ProjectTx, Storage
from .file import FileStorage

__all__ = ["GlobalTx", "ProjectTx", "Storage", "open_storage"]


def open_storage(url: str, fsync: bool = True) -> Storage:
    """Open the backend a `TASKDRIVER_STORAGE_URL` names (`file:<dir>` is the default)."""
    if url.startswith("file:"):
        return FileStorage(Path(url.removeprefix("file:").removeprefix("//") or "."), fsync)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStorage  # psycopg is only loaded when it is used

        return PostgresStorage(url, fsync)
    raise StorageError(f"unsupported storage URL scheme: {url.split(':', 1)[0]!r}")
