"""Versioned PostgreSQL migrations: numbered SQL files, and a table of those applied.

    taskdriver/storage/sql/migrations/0001_initial.sql, 0002_….sql, …

Each file is applied once, in its own transaction, and recorded in `td_schema_migrations`.
The whole run holds an advisory lock, so hosts starting together apply each file exactly
once: the second host waits, then finds nothing left to do. A database created before
migrations existed adopts 0001 unchanged (its statements are idempotent) and goes on from
there. Servers apply pending migrations at start; `flask --app taskdriver taskdriver migrate`
applies them by hand and `--dry-run` prints them instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

MIGRATIONS_PACKAGE = "taskdriver.storage.sql.migrations"
FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK = "SELECT pg_advisory_lock(hashtext('taskdriver:schema'))"
UNLOCK = "SELECT pg_advisory_unlock(hashtext('taskdriver:schema'))"
LEDGER = """
CREATE TABLE IF NOT EXISTS td_schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """Every migration shipped in the package, in version order."""
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        match = FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda migration: migration.version)


def _applied(connection: psycopg.Connection[Any]) -> set[int]:
    return {row[0] for row in connection.execute("SELECT version FROM td_schema_migrations")}


def migrate(connection: psycopg.Connection[Any], dry_run: bool = False) -> list[Migration]:
    """Apply (or, dry, only list) the pending migrations; returns them in order.

    `connection` must be in autocommit mode; each migration gets its own transaction.
    """
    connection.execute(LOCK)
    try:
        connection.execute(LEDGER)
        pending = [m for m in available() if m.version not in _applied(connection)]
        if not dry_run:
            for migration in pending:
                with connection.transaction():
                    connection.execute(migration.sql)
                    connection.execute(
                        "INSERT INTO td_schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name))
        return pending
    finally:
        connection.execute(UNLOCK)


def migrate_database(url: str, dry_run: bool = False) -> list[Migration]:
    """Connect to the database at `url` and run `migrate` there (the operator's command)."""
    from ..errors import StorageError

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
            return migrate(connection, dry_run)
    except psycopg.Error as exc:
        raise StorageError(f"cannot migrate the PostgreSQL database: {exc}") from exc
