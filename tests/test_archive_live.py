"""The archive through a real gunicorn server and the two commands: `flask taskdriver
archive` moves finished tasks, `taskdriver export --archived` streams them after the live
ones (issue 24). Both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from taskdriver.client import Client

from conftest import ADMIN_TOKEN, ALL_BACKENDS, postgres_schema
from live_server import LiveServer, serving

pytestmark = pytest.mark.slow
BACKENDS = ALL_BACKENDS
TASKDRIVER = Path(sys.executable).parent / "taskdriver"


@contextmanager
def server_on(tmp_path: Path, backend: str) -> Iterator[LiveServer]:
    if backend == "file":
        with serving(tmp_path / "data", 2, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as live:
            yield live
        return
    with postgres_schema() as url, serving(tmp_path / "data", 2, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN,
                                           TASKDRIVER_STORAGE_URL=url) as live:
        yield live


def export(server: LiveServer, *args: str) -> list[dict]:
    env = {**os.environ, "TASKDRIVER_URL": server.url, "TASKDRIVER_TOKEN": ADMIN_TOKEN}
    done = subprocess.run([str(TASKDRIVER), "export", *args], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_export_includes_archived_tasks_with_archived(tmp_path: Path, backend: str) -> None:
    with server_on(tmp_path, backend) as server:
        client = Client(server.url, ADMIN_TOKEN)
        client.create_project("live")
        client.create_tasks_bulk("live", [{"instructions": f"job {i}"} for i in range(30)])
        finished = []
        for _ in range(20):
            task = client.next_task("w", "live")
            assert task is not None
            client.complete_task(task["id"], result=f"r-{task['id']}", agent_name="w")
            finished.append(task["id"])
        moved = server.cli("archive", "--project", "live", "--older-than", "0")
        assert moved.returncode == 0, moved.stderr
        assert "project=live archivedTasks=20 " in moved.stdout
        live_only = export(server, "-p", "live")
        assert len(live_only) == 10 and not any(row["archived"] for row in live_only)
        everything = export(server, "-p", "live", "--archived")
        assert [row["id"] for row in everything[10:]] == finished
        assert all(row["archived"] for row in everything[10:])
        assert everything[10]["result"] == f"r-{finished[0]}"
        completed = export(server, "-p", "live", "--archived", "-s", "completed")
        assert [row["id"] for row in completed] == finished
        assert client.get_task(finished[3])["archived"] is True
