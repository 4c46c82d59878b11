"""kill -9 of a process archiving, at random instants, while tasks keep finishing: every
task stays exactly once, live or archived (issue 24). Both backends, real processes."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask

from conftest import ALL_BACKENDS, Api, close_app, make_app, postgres_schema

pytestmark = pytest.mark.slow
BACKENDS = ALL_BACKENDS
WORKER = Path(__file__).parent / "archive_worker.py"
ROUNDS = 8
TASKS_PER_ROUND = 60


@contextmanager
def storage(tmp_path: Path, backend: str) -> Iterator[list[str]]:
    """The worker's arguments: the data directory, and for PostgreSQL a fresh schema."""
    if backend == "file":
        yield [str(tmp_path / "data")]
        return
    with postgres_schema() as url:
        yield [str(tmp_path / "data"), url]


def finish_tasks(api: Api, project_id: str, count: int) -> list[str]:
    created = api.post(f"/api/projects/{project_id}/tasks/bulk",
                       {"tasks": [{"instructions": f"t{i}"} for i in range(count)]})
    assert created.status_code == 201
    ids = []
    for _ in range(count):
        task = api.next_task("w", project_id).get_json()["data"]["task"]
        assert api.post(f"/api/tasks/{task['id']}/complete",
                        {"agentName": "w", "result": task["id"]}).status_code == 200
        ids.append(task["id"])
    return ids


def every_task_once(api: Api, project_id: str) -> Counter[str]:
    """How often each task id appears across the live list and the archive's."""
    seen: Counter[str] = Counter()
    for archived in ("false", "true"):
        offset = 0
        while True:
            page = api.get(f"/api/projects/{project_id}/tasks?archived={archived}"
                           f"&limit=1000&offset={offset}").get_json()
            seen.update(task["id"] for task in page["data"])
            offset += len(page["data"])
            if not page["data"]:
                break
    return seen


def kill_while_archiving(arguments: list[str], rng: random.Random) -> None:
    with subprocess.Popen([sys.executable, str(WORKER), *arguments],
                          stdout=subprocess.PIPE, text=True) as worker:
        try:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            worker.kill()  # SIGKILL
            worker.wait(timeout=60)


def test_kill_9_while_archiving_loses_and_duplicates_nothing(tmp_path: Path, backend: str
                                                             ) -> None:
    rng = random.Random(24)
    with storage(tmp_path, backend) as arguments:
        overrides = {"TASKDRIVER_STORAGE_URL": arguments[1]} if len(arguments) > 1 else {}
        app: Flask = make_app(Path(arguments[0]), **overrides)
        try:
            api = Api(app.test_client())
            project = api.project("crash")
            finished: list[str] = []
            for _ in range(ROUNDS):
                finished += finish_tasks(api, project["id"], TASKS_PER_ROUND)
                kill_while_archiving(arguments, rng)
                seen = every_task_once(api, project["id"])
                assert set(seen) == set(finished)
                assert max(seen.values()) == 1
            result = app.test_cli_runner().invoke(
                args=["taskdriver", "archive", "--older-than", "0"])
            assert result.exit_code == 0, result.output
            assert api.get(f"/api/projects/{project['id']}/tasks").get_json()["data"] == []
            for task_id in finished:
                task = api.get(f"/api/tasks/{task_id}").get_json()["data"]
                assert task["archived"] is True and task["result"] == task_id
            stats = api.get(f"/api/projects/{project['id']}/stats").get_json()["data"]
            assert stats["project"]["stats"]["totalTasks"] == len(finished)
            assert stats["project"]["stats"]["archivedTasks"] == len(finished)
        finally:
            close_app(app)
