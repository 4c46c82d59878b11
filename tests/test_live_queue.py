"""The queue under a real gunicorn with several workers, many agents and the reaper CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ADMIN_TOKEN, postgres_schema, postgres_unavailable
from live_server import LiveServer, serving
from soak import operator, run_soak, verify

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with serving(tmp_path / "data", 3, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as live:
        yield live


def test_sixteen_agents_drain_a_thousand_tasks(server: LiveServer) -> None:
    """The short soak: 3 workers, reaper looping, 16 agents, 1,000 tasks, 3 s leases."""
    report = run_soak(server, agents=16, tasks=1000)
    counts = verify(server, report, 1000)
    assert counts["completed"] > 900  # most work succeeds; the rest failed by its rules


def test_reaper_cli_reclaims_while_the_server_runs(server: LiveServer) -> None:
    project = operator(server, "POST", "/api/projects", json={
        "name": "reap", "config": {"defaultLeaseDurationMinutes": 0.05}})["data"]
    task = operator(server, "POST", f"/api/projects/{project['id']}/tasks",
                    json={"instructions": "x"})["data"]
    operator(server, "POST", "/api/agents/w/next-task", json={"projectId": project["id"]})
    result = server.cli("reap")
    assert result.returncode == 0 and "reclaimedTasks=0" in result.stdout
    time.sleep(3.2)
    result = server.cli("reap")
    assert "reclaimedTasks=1 cleanedAgents=1" in result.stdout, result.stderr
    reclaimed = operator(server, "GET", f"/api/tasks/{task['id']}")["data"]
    assert reclaimed["status"] == "queued" and reclaimed["attempts"][0]["status"] == "timeout"


def test_two_hosts_share_one_postgresql_database(tmp_path: Path) -> None:
    """Two gunicorn servers (2 workers each) on one database: the short soak across both."""
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with postgres_schema() as url:
        env = {"TASKDRIVER_ADMIN_TOKEN": ADMIN_TOKEN, "TASKDRIVER_STORAGE_URL": url}
        with serving(tmp_path / "a", 2, **env) as first, \
                serving(tmp_path / "b", 2, **env) as second:
            report = run_soak(first, agents=16, tasks=600, other_hosts=(second,))
            verify(first, report, 600, other_hosts=(second,))
            assert operator(second, "GET", f"/api/projects/{report.project_id}/stats")[
                "data"]["project"]["stats"]["completedTasks"] == len(report.acknowledged)
