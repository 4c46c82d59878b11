"""The floor: the least an agent cycle can cost over HTTP on this machine with fsync on.

A bare Flask app, served by gunicorn with TaskDriver's own configuration (same worker class,
workers and threads), that answers the routes the benchmark calls with the fewest possible
bytes. `next-task` and `complete` each append one line to a journal under a file lock (a
blocking `flock`) and fsync it before answering: the one durable write TaskDriver's file
backend needs per request. `tasks/bulk` parses the body, gives each task an id and appends
them all in one write and one fsync. There is no queue, no auth and no validation.
`make bench` runs it beside TaskDriver in the same run and prints TaskDriver's figures as
ratios to it.

    gunicorn --config gunicorn.conf.py bench.floor_app:app
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import Any

from flask import Flask, request

JOURNAL = Path(os.environ.get("TASKDRIVER_DATA_DIR", "data")) / "floor.jsonl"
JOURNAL.parent.mkdir(parents=True, exist_ok=True)

app = Flask(__name__)


def _append(*records: dict[str, Any]) -> None:
    """Lines written in one go and fsynced under the file lock before the answer goes out."""
    lines = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    with open(JOURNAL, "ab", buffering=0) as journal:
        fcntl.flock(journal.fileno(), fcntl.LOCK_EX)
        journal.write(lines)
        os.fsync(journal.fileno())


@app.get("/health")
def health() -> dict[str, Any]:
    return {"success": True}


@app.post("/api/auth/login")
def login() -> dict[str, Any]:
    return {"success": True, "data": {"token": uuid.uuid4().hex}}


@app.post("/api/agents/<agent_name>/next-task")
def next_task(agent_name: str) -> dict[str, Any]:
    task_id = str(uuid.uuid4())
    _append({"lease": task_id, "agent": agent_name})
    return {"success": True, "data": {"task": {"id": task_id}}}


@app.post("/api/tasks/<task_id>/complete")
def complete(task_id: str) -> dict[str, Any]:
    _append({"complete": task_id, "body": request.get_json(silent=True)})
    return {"success": True, "data": {"id": task_id, "status": "completed"}}


@app.post("/api/projects/<project_id>/tasks/bulk")
def bulk(project_id: str) -> tuple[dict[str, Any], int]:
    tasks = request.get_json()["tasks"]
    _append(*({"project": project_id, "id": str(uuid.uuid4()), **task} for task in tasks))
    return {"success": True, "data": {"tasksCreated": len(tasks), "errors": []}}, 201


@app.post("/api/projects")
def create_project() -> tuple[dict[str, Any], int]:
    return {"success": True, "data": {"id": str(uuid.uuid4()), **request.get_json()}}, 201
