"""The PostgreSQL floor: the least an agent cycle can cost over HTTP with a database commit.

The file floor (`floor_app.py`) with its journal replaced by PostgreSQL: the same bare Flask
app under TaskDriver's gunicorn configuration, whose `next-task` and `complete` each run one
`INSERT …; COMMIT` through a psycopg connection pool (the one durable write per request a
PostgreSQL backend needs, with the server's own `synchronous_commit`), and whose
`tasks/bulk` inserts the whole body in one statement. No queue, no auth, no validation.
`bench.py --storage-url …` runs it beside TaskDriver and prints the PostgreSQL figures as
ratios to it.

    TASKDRIVER_STORAGE_URL=postgresql://… gunicorn --config gunicorn.conf.py \
        bench.pg_floor_app:app
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from flask import Flask, request
from psycopg_pool import ConnectionPool

POOL_MAX_SIZE = 8  # as TaskDriver's PostgreSQL backend, per process
SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_floor (
    id      text PRIMARY KEY,
    kind    text NOT NULL,
    data    jsonb NOT NULL
)
"""

app = Flask(__name__)
_pool = ConnectionPool(os.environ["TASKDRIVER_STORAGE_URL"], min_size=1,
                       max_size=POOL_MAX_SIZE, open=True)
with _pool.connection() as _connection:
    _connection.execute("SELECT pg_advisory_lock(hashtext('bench_floor'))")  # workers race
    _connection.execute(SCHEMA)
    _connection.commit()
    _connection.execute("SELECT pg_advisory_unlock(hashtext('bench_floor'))")


def _insert(kind: str, records: list[dict[str, Any]]) -> None:
    """One INSERT of every record and its COMMIT before the answer goes out."""
    with _pool.connection() as connection:  # commits on leaving the block
        connection.execute(
            "INSERT INTO bench_floor (id, kind, data) "
            "SELECT unnest(%s::text[]), %s, unnest(%s::text[])::jsonb",
            ([str(uuid.uuid4()) for _ in records], kind,
             [json.dumps(record) for record in records]))


@app.get("/health")
def health() -> dict[str, Any]:
    return {"success": True}


@app.post("/api/auth/login")
def login() -> dict[str, Any]:
    return {"success": True, "data": {"token": uuid.uuid4().hex}}


@app.post("/api/agents/<agent_name>/next-task")
def next_task(agent_name: str) -> dict[str, Any]:
    task_id = str(uuid.uuid4())
    _insert("lease", [{"task": task_id, "agent": agent_name}])
    return {"success": True, "data": {"task": {"id": task_id}}}


@app.post("/api/tasks/<task_id>/complete")
def complete(task_id: str) -> dict[str, Any]:
    _insert("complete", [{"task": task_id, "body": request.get_json(silent=True)}])
    return {"success": True, "data": {"id": task_id, "status": "completed"}}


@app.post("/api/projects/<project_id>/tasks/bulk")
def bulk(project_id: str) -> tuple[dict[str, Any], int]:
    tasks = request.get_json()["tasks"]
    _insert("task", [{"project": project_id, **task} for task in tasks])
    return {"success": True, "data": {"tasksCreated": len(tasks), "errors": []}}, 201


@app.post("/api/projects")
def create_project() -> tuple[dict[str, Any], int]:
    return {"success": True, "data": {"id": str(uuid.uuid4()), **request.get_json()}}, 201
