"""kill -9 between a dependency's completion and its dependents' release loses neither.

A real server (gunicorn, two workers) holds one task and thousands of tasks waiting for it
(by `dependsOnBatch`, and one by `dependsOn`). The test completes the task while watching
storage from outside (the project's journal files, or the row in PostgreSQL); the moment
the completion is in storage it kills every server process with SIGKILL. Were the release
a commit of its own, that moment would fall between the two (releasing thousands takes far
longer than one look), and after the restart the completion would be stored with its
dependents still waiting for good (a repeated completion changes nothing). The release is
in the completion's own commit, so after the restart and the agent's retry the task is
completed once and every dependent is queued. On PostgreSQL one statement also reads the
completion and the waiting count from one snapshot: completed with anything waiting would
be a release outside its commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import pytest
import requests

from conftest import ADMIN_TOKEN, postgres_schema
from live_server import LiveServer
from soak import operator

pytestmark = pytest.mark.slow
BACKENDS = ("file", "postgresql")  # conftest parametrizes `backend` (skips PostgreSQL if down)
DEPENDENTS = 3000
WATCH_DEADLINE_SECONDS = 60.0


@contextmanager
def _server(tmp_path: Path, backend: str) -> Iterator[tuple[LiveServer, str | None]]:
    if backend == "file":
        server = LiveServer(tmp_path / "data", workers=2, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN)
        try:
            yield server.start(), None
        finally:
            server.stop()
        return
    with postgres_schema() as url:
        server = LiveServer(tmp_path / "data", workers=2, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN,
                            TASKDRIVER_STORAGE_URL=url)
        try:
            yield server.start(), url
        finally:
            server.stop()


def _journal_size(project_dir: Path) -> int:
    return sum(path.stat().st_size for path in project_dir.glob("journal.*.jsonl"))


def _completion_seen(data_dir: Path, project_id: str, task_id: str, url: str | None
                     ) -> Callable[[], bool]:
    """A look at storage: whether the task's completion is stored (file: the project's
    journal grew; PostgreSQL: the row says completed, with nothing left waiting)."""
    if url is None:
        project_dir = data_dir / "projects" / project_id
        before = _journal_size(project_dir)
        return lambda: _journal_size(project_dir) != before
    connection = psycopg.connect(url, autocommit=True)

    def look() -> bool:
        status, waiting = connection.execute(
            "SELECT (SELECT status FROM td_tasks WHERE id = %s), (SELECT count(*) FROM "
            "td_tasks WHERE project_id = %s AND status = 'waiting')",
            (task_id, project_id)).fetchone()  # one statement: one snapshot
        if status == "completed":
            connection.close()
            assert waiting == 0, f"completed with {waiting} dependents still waiting"
            return True
        return False

    return look


def test_kill_9_at_the_completion_loses_no_release(tmp_path: Path, backend: str) -> None:
    with _server(tmp_path, backend) as (server, url):
        project = operator(server, "POST", "/api/projects", json={
            "name": "crash-deps", "config": {"defaultLeaseDurationMinutes": 60}})["data"]
        base = f"/api/projects/{project['id']}"
        root = operator(server, "POST", f"{base}/tasks",
                        json={"instructions": "map", "batchId": "map"})["data"]
        for start in range(0, DEPENDENTS, 1000):
            operator(server, "POST", f"{base}/tasks/bulk", json={"tasks": [
                {"instructions": f"reduce {i}", "dependsOnBatch": "map"}
                for i in range(start, start + 1000)]})
        direct = operator(server, "POST", f"{base}/tasks", json={
            "instructions": "after", "dependsOn": [root["id"]]})["data"]
        leased = operator(server, "POST", "/api/agents/mapper/next-task",
                          json={"projectId": project["id"]})["data"]["task"]
        assert leased["id"] == root["id"]

        seen = _completion_seen(tmp_path / "data", project["id"], root["id"], url)
        complete = threading.Thread(target=_complete_once, args=(server.url, root["id"]))
        complete.start()
        deadline = time.monotonic() + WATCH_DEADLINE_SECONDS
        while not seen():
            assert time.monotonic() < deadline, "the completion never reached storage"
            time.sleep(0.001)
        server.kill()
        complete.join(timeout=60)

        server.start()
        retried = requests.post(f"{server.url}/api/tasks/{root['id']}/complete", timeout=60,
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                json={"agentName": "mapper", "result": "mapped"})
        assert retried.status_code == 200, retried.text  # the agent's retry: harmless
        stored = operator(server, "GET", f"/api/tasks/{root['id']}")["data"]
        assert stored["status"] == "completed" and stored["result"] == "mapped"
        assert [a["status"] for a in stored["attempts"]] == ["completed"]
        stats = operator(server, "GET", f"{base}/stats")["data"]["project"]["stats"]
        assert (stats["waitingTasks"], stats["queuedTasks"]) == (0, DEPENDENTS + 1)
        assert operator(server, "GET", f"/api/tasks/{direct['id']}")["data"]["status"] == \
            "queued"
        assert operator(server, "GET", f"{base}/peek-next-task")["data"][
            "tasksAvailable"] == DEPENDENTS + 1


def _complete_once(url: str, task_id: str) -> None:
    """The agent's completion, which the kill may cut off (its answer is then lost)."""
    with suppress(requests.RequestException):
        requests.post(f"{url}/api/tasks/{task_id}/complete", timeout=60,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                      json={"agentName": "mapper", "result": "mapped"})
