"""PostgreSQL sections: the named queries, what every section shares, the global records.

SQL lives in `sql/queries.sql` as named queries; a section is one transaction on one
pooled connection (opened by `postgres.PostgresStorage`) with those queries at hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from importlib import resources
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from ..models import IdempotencyRecord, Project, Session
from .base import Contention, GlobalTx
from .codec import decode_project, decode_session


def _load_queries(file_name: str) -> dict[str, str]:
    """Split a file of `sql/` into its named queries."""
    text = resources.files(f"{__package__}.sql").joinpath(file_name).read_text()
    queries: dict[str, str] = {}
    for chunk in text.split("-- name: ")[1:]:
        name, _, body = chunk.partition("\n")
        queries[name.strip()] = "\n".join(
            line for line in body.splitlines() if not line.startswith("--")).strip()
    return queries


QUERIES = {**_load_queries("queries.sql"), **_load_queries("archive.sql")}


def json_text(record: Any) -> str:
    """A record as the JSON text stored in `data`."""
    return orjson.dumps(record).decode()


def as_json(record: Any) -> Jsonb:
    """A record as a `jsonb` parameter."""
    return Jsonb(record, dumps=json_text)


class Pipeline:
    """A writer's section runs in pipeline mode (see `postgres.py`); a statement that
    cannot (COPY) steps out of it for a moment, in the same transaction: `paused`.

    `pipelined`: the stack the section's pipeline is open on, closed with the section."""

    def __init__(self, connection: psycopg.Connection[Any], pipelined: ExitStack) -> None:
        self._connection = connection
        self._pipelined = pipelined
        pipelined.enter_context(connection.pipeline())

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Out of pipeline mode for the block: what was queued runs first (a failure among
        it is raised here), and statements are pipelined again after."""
        self._pipelined.close()
        yield
        self._pipelined.enter_context(self._connection.pipeline())


class Section:
    """One transaction on one connection, with the named queries at hand.

    `pipeline`: a writer's (None: a reader, whose statements each run alone). `scope` is
    where its idempotency keys live: '' globally, else the project's id.
    """

    def __init__(self, connection: psycopg.Connection[Any], pipeline: Pipeline | None,
                 project_id: str | None = None) -> None:
        self.connection = connection
        self.pipeline = pipeline
        # One cursor for every statement: a cursor per statement was a tenth of each
        # statement's cost in Python. Every answer is read before the next statement.
        self._cursor = connection.cursor()
        self.write = pipeline is not None
        self._idempotency_scope = project_id or ""
        self._idempotency_owner = project_id
        self._idempotency_seen: dict[str, float] = {}  # key: created_at of the record read

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        raw = self._one("get_idempotency", scope=self._idempotency_scope, key=key)
        if raw is None:
            return None
        record = IdempotencyRecord(**raw)
        self._idempotency_seen[key] = record.created_at
        return record

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        self._check_write()
        stored = self._count("put_idempotency", scope=self._idempotency_scope, key=record.id,
                             project_id=self._idempotency_owner, created_at=record.created_at,
                             data=as_json(record),
                             seen_at=self._idempotency_seen.get(record.id))
        if not stored:
            raise Contention("Another request stored this Idempotency-Key meanwhile")
        self._idempotency_seen[record.id] = record.created_at

    def purge_idempotency(self, before: float) -> int:
        self._check_write()
        return self._count("purge_idempotency", scope=self._idempotency_scope, before=before)

    def _check_write(self) -> None:
        if not self.write:
            raise RuntimeError("a read-only section cannot change records")

    def _run(self, query: str, /, **params: Any) -> psycopg.Cursor[Any]:
        return self._cursor.execute(QUERIES[query], params)

    def _count(self, query: str, /, **params: Any) -> int:
        """Run a statement and say how many rows it changed. A writer's section is
        pipelined (see `postgres.py`): the count is known once the statement has run, so
        this waits for it (a nested pipeline syncs as it ends)."""
        with self.connection.pipeline():
            cursor = self._run(query, **params)
        return cursor.rowcount

    def _change(self, query: str, /, **params: Any) -> None:
        self._check_write()
        self._run(query, **params)

    def _one(self, query: str, /, **params: Any) -> Any:
        row = self._run(query, **params).fetchone()
        return None if row is None else row[0]

    def _all(self, query: str, /, **params: Any) -> list[Any]:
        return [row[0] for row in self._run(query, **params).fetchall()]


class PostgresGlobalTx(Section, GlobalTx):
    def get_project(self, project_id: str) -> Project | None:
        raw = self._one("get_project", id=project_id)
        return None if raw is None else decode_project(raw)

    def project_by_name(self, name: str) -> Project | None:
        raw = self._one("project_by_name", name=name)
        return None if raw is None else decode_project(raw)

    def list_projects(self) -> list[Project]:
        return [decode_project(raw) for raw in self._all("list_projects")]

    def put_project(self, project: Project) -> None:
        self._change("put_project", id=project.id, name=project.name, data=as_json(project))
        # A project resumed: its tasks may be leased now, so its waiting polls must look.
        self._run("notify_work", project_id=project.id)

    def delete_project(self, project_id: str) -> None:
        self._change("delete_project", id=project_id)

    def session_by_token_hash(self, token_hash: str) -> Session | None:
        raw = self._one("session_by_token_hash", token_hash=token_hash)
        return None if raw is None else decode_session(raw)

    def session_with_project(self, token_hash: str) -> tuple[Session, Project | None] | None:
        row = self._run("session_with_project", token_hash=token_hash).fetchone()
        if row is None:
            return None
        session, project = row
        return decode_session(session), None if project is None else decode_project(project)

    def put_session(self, session: Session) -> None:
        self._change("put_session", id=session.id, token_hash=session.token_hash,
                     project_id=session.project_id, expires_at=session.expires_at,
                     data=as_json(session))

    def delete_session(self, session_id: str) -> None:
        self._change("delete_session", id=session_id)

    def sessions(self) -> list[Session]:
        return [decode_session(raw) for raw in self._all("sessions")]

    def has_admin_token(self, token_hash: str) -> bool:
        return self._one("has_admin_token", token_hash=token_hash) is not None

    def add_admin_token(self, token_hash: str, created_at: float) -> None:
        self._change("add_admin_token", token_hash=token_hash, created_at=created_at)

    def admin_token_count(self) -> int:
        return int(self._one("admin_token_count"))
