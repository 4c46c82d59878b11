"""The PostgreSQL backend: several app hosts share one database.

A thin connector in the manner of procrastinate: a psycopg connection pool per process, SQL
as named queries in `sql/queries.sql`, the schema in numbered files under `sql/migrations/`
(applied by `migrations.py`), and every driver error wrapped in `StorageError` here, so
nothing above imports psycopg. The sections live in `postgres_sections.py` (global
records) and `postgres_tasks.py` (one project), waiting for work in `postgres_watch.py`.

Atomic sections are transactions. A global writer takes an advisory lock. A project writer
takes the project's advisory lock: exclusively, or shared (see `base`), so the queue's
claims and outcomes in one project never wait for each other; they lock only their task
rows. Readers take no lock and see every transaction committed before they began (READ
COMMITTED).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

import orjson
import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import NotFound, StorageError
from ..models import Project
from .base import ChangeWatch, Contention, GlobalTx, ProjectTx, Storage
from .codec import decode_project, decode_task_type
from .migrations import migrate
from .postgres_sections import QUERIES, Pipeline, PostgresGlobalTx
from .postgres_tasks import PostgresProjectTx
from .postgres_watch import Listener, PostgresWatch

__all__ = ["QUERIES", "PostgresStorage"]

POOL_MAX_SIZE = 8  # per process; a connection is held only during a transaction
LISTENER_START_SECONDS = 5.0
# What a concurrent writer can make a statement fail with: the section is tried again.
CONTENDED = (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected,
             psycopg.errors.SerializationFailure)


class PostgresStorage(Storage):
    """Storage in a PostgreSQL database (the schema is created on first use)."""

    provider = "postgresql"

    def __init__(self, url: str, fsync: bool = True) -> None:
        """Connect; with `fsync` false, commits stop waiting for the WAL to reach disk."""
        try:
            self._pool = ConnectionPool(url, min_size=1, max_size=POOL_MAX_SIZE, open=True,
                                        kwargs={"autocommit": True},
                                        configure=partial(_configure, fsync=fsync))
            self._pool.wait(timeout=10)
            self._create_schema()
            self._listener = Listener(url)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageError(f"cannot use the PostgreSQL database: {exc}") from exc

    def _create_schema(self) -> None:
        with self._pool.connection() as connection:
            migrate(connection)

    @contextmanager
    def _transaction(self, write: bool = True
                     ) -> Iterator[tuple[psycopg.Connection[Any], Pipeline | None]]:
        """A connection for one section, with its writer's pipeline. A writer's statements
        form one transaction; a reader's each run alone (autocommit, no pipeline): under
        READ COMMITTED a transaction's statements see fresh snapshots anyway, and BEGIN
        and COMMIT would be two more round trips for every authentication and project
        lookup."""
        try:
            with self._pool.connection() as connection:
                if not write:
                    yield connection, None
                    return
                with _pipelined_transaction(connection) as pipeline:
                    yield connection, pipeline
        except CONTENDED as exc:
            raise Contention(f"a concurrent write got there first ({exc.sqlstate})") from exc
        except psycopg.errors.ForeignKeyViolation as exc:  # its project was deleted meanwhile
            raise NotFound("Project not found") from exc
        except psycopg.Error as exc:
            raise StorageError(f"database error: {exc.__class__.__name__}") from exc

    @contextmanager
    def global_tx(self, write: bool = True) -> Iterator[GlobalTx]:
        with self._transaction(write) as (connection, pipeline):
            if write:
                connection.execute(QUERIES["lock_global"])
            yield PostgresGlobalTx(connection, pipeline)

    @contextmanager
    def project_tx(self, project_id: str, write: bool = True, shared: bool = False
                   ) -> Iterator[ProjectTx]:
        with self._transaction(write) as (connection, pipeline):
            check = ("project_exists" if not write else
                     "share_project" if shared else "lock_project")
            found = connection.execute(QUERIES[check], {"id": project_id}).fetchone()
            if found is None:
                raise NotFound("Project not found")
            task_types = [decode_task_type(raw) for raw in found[1]] if shared else None
            yield PostgresProjectTx(connection, pipeline, project_id, task_types)

    def watch(self, project_id: str) -> ChangeWatch:
        self._listener.start(within=LISTENER_START_SECONDS)
        return PostgresWatch(self._listener, project_id)

    def project_of_task(self, task_id: str) -> Project | None:
        return self._owner("project_of_task", task_id)

    def project_of_task_type(self, type_id: str) -> Project | None:
        return self._owner("project_of_task_type", type_id)

    def _owner(self, query: str, record_id: str) -> Project | None:
        with self._transaction(write=False) as (connection, _):
            row = connection.execute(QUERIES[query], {"id": record_id}).fetchone()
        return None if row is None else decode_project(row[0])

    def check_writable(self) -> None:
        with self._transaction() as (connection, _):
            connection.execute(QUERIES["touch_health"])

    def close(self) -> None:
        self._listener.stop()
        self._pool.close()


@contextmanager
def _pipelined_transaction(connection: psycopg.Connection[Any]) -> Iterator[Pipeline]:
    """One transaction in pipeline mode: BEGIN travels with the section's first statement,
    and COMMIT with the writes whose answers nobody reads (a `put_task`), so an agent's
    next-task and complete each wait for the database four times instead of six.

    Statements run in order; one that fails is reported at the next statement whose
    answer is read, or at the COMMIT, and the section ends as if it had failed there.
    """
    try:
        with ExitStack() as pipelined:
            pipeline = Pipeline(connection, pipelined)
            connection.execute("BEGIN")
            yield pipeline
            connection.execute("COMMIT")
    except BaseException:
        if connection.info.transaction_status in (TransactionStatus.INTRANS,
                                                  TransactionStatus.INERROR):
            # psycopg's rollback also forgets the statements it prepared: one whose PREPARE
            # a failure aborted in the pipeline would otherwise be run by a name the
            # server never heard of. (A broken connection: the pool drops it.)
            connection.rollback()
        raise


def _configure(connection: psycopg.Connection[Any], fsync: bool) -> None:
    """Each new connection: records decoded by orjson (psycopg's default is the standard
    library's json, several times slower); with TASKDRIVER_FSYNC=false,
    commits that stop waiting for the WAL (a crash may lose the last ones, never tear)."""
    set_json_loads(orjson.loads, connection)
    if not fsync:
        connection.execute("SET synchronous_commit TO off")
        connection.commit()
