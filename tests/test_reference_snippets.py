"""The API reference's own client examples run unchanged against a real server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from conftest import ADMIN_TOKEN
from live_server import ROOT, LiveServer, serving

pytestmark = pytest.mark.slow

SNIPPETS = Path(__file__).parent / "reference_snippets"
NODE_MODULES = ROOT / "build" / "node-snippets" / "node_modules"
REFERENCE_BASE_URL = "http://localhost:3000/api"
OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("snippets") / "data", 1,
                 TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as live:
        project = requests.post(f"{live.url}/api/projects", json={"name": "project-id"},
                                headers=OPERATOR, timeout=30).json()["data"]
        live.project_id = project["id"]  # type: ignore[attr-defined]
        yield live


def _queue_one_task(server: LiveServer) -> str:
    response = requests.post(f"{server.url}/api/projects/{server.project_id}/tasks",  # type: ignore[attr-defined]
                             json={"instructions": "say hello"}, headers=OPERATOR, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def _task(server: LiveServer, task_id: str) -> dict:
    return requests.get(f"{server.url}/api/tasks/{task_id}", headers=OPERATOR,
                        timeout=30).json()["data"]


def _pointed_at(server: LiveServer, source: str) -> str:
    assert REFERENCE_BASE_URL in source
    return source.replace(REFERENCE_BASE_URL, f"{server.url}/api")


def test_python_snippet_runs_as_printed(server: LiveServer, tmp_path: Path) -> None:
    task_id = _queue_one_task(server)
    script = tmp_path / "client.py"
    script.write_text(_pointed_at(server, (SNIPPETS / "client.py").read_text()))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    task = _task(server, task_id)
    assert task["status"] == "completed"
    assert task["result"] == "Task completed successfully"
    assert task["attempts"][-1]["agentName"] == "my-agent"


@pytest.mark.skipif(shutil.which("node") is None or not (NODE_MODULES / "axios").is_dir(),
                    reason="node or axios missing (scripts/install-test-deps installs axios "
                           "into build/node-snippets with npm where node is present)")
def test_javascript_snippet_runs_as_printed(server: LiveServer, tmp_path: Path) -> None:
    task_id = _queue_one_task(server)
    script = tmp_path / "client.mjs"
    # The snippet mixes require() with top-level await; as an ES module with a require()
    # made for it, it runs as printed.
    script.write_text("import { createRequire } from 'module';\n"
                      f"const require = createRequire({str(NODE_MODULES / 'x')!r});\n"
                      + _pointed_at(server, (SNIPPETS / "client.js").read_text()))
    run = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    task = _task(server, task_id)
    assert task["status"] == "completed"
    assert task["result"] == "Task completed successfully"
