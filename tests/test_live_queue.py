"""The queue under a real gunicorn with several workers, many agents and the reaper CLI."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from conftest import ADMIN_TOKEN
from live_server import BIN, ROOT, LiveServer

pytestmark = pytest.mark.slow
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "data", workers=3, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN)
    live.start()
    yield live
    live.stop()


def operator(server: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, f"{server.url}{path}", headers=HEADERS, timeout=30,
                                **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def all_tasks(server: LiveServer, project_id: str) -> list[dict]:
    tasks: list[dict] = []
    while True:
        page = operator(server, "GET",
                        f"/api/projects/{project_id}/tasks?limit=1000&offset={len(tasks)}")
        tasks += page["data"]
        if len(page["data"]) < 1000:
            return tasks


def test_sixteen_agents_drain_a_thousand_tasks(server: LiveServer) -> None:
    max_retries = 3
    project = operator(server, "POST", "/api/projects", json={
        "name": "drain", "config": {"defaultLeaseDurationMinutes": 0.05,
                                    "defaultMaxRetries": max_retries}})["data"]
    for start in (0, 500):
        operator(server, "POST", f"/api/projects/{project['id']}/tasks/bulk", json={
            "tasks": [{"instructions": f"task {i}"} for i in range(start, start + 500)]})
    reaper = subprocess.Popen(
        [str(BIN / "flask"), "--app", "taskdriver", "taskdriver", "reap", "--loop",
         "--interval", "0.5"], cwd=ROOT, env=server.env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    acknowledged: list[tuple[str, str]] = []  # (task id, agent) of every 200 on complete
    ack_lock = threading.Lock()
    errors: list[str] = []

    def agent(slot: int) -> None:
        rng = random.Random(slot)
        generation = 0
        http = requests.Session()
        login = http.post(f"{server.url}/api/auth/login", timeout=30,
                          json={"agentName": f"agent-{slot}", "projectId": "drain"}).json()
        http.headers["Authorization"] = f"Bearer {login['data']['token']}"
        name = f"agent-{slot}"
        idle_since = None
        while True:
            response = http.post(f"{server.url}/api/agents/{name}/next-task", json={},
                                 timeout=30)
            if response.status_code == 403:  # a new identity needs its own session
                login = http.post(f"{server.url}/api/auth/login", timeout=30, json={
                    "agentName": name, "projectId": "drain"}).json()
                http.headers["Authorization"] = f"Bearer {login['data']['token']}"
                continue
            body = response.json()
            if response.status_code != 200:
                errors.append(f"next-task {response.status_code} {body}")
                return
            if not body["success"]:
                stats = http.get(f"{server.url}/api/projects/{project['id']}/stats",
                                 timeout=30).json()["data"]
                if stats["project"]["stats"]["runningTasks"] == 0 and \
                        stats["queueDepth"] == 0:
                    return
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 60:
                    errors.append("stuck waiting for tasks")
                    return
                time.sleep(0.2)
                continue
            idle_since = None
            task = body["data"]["task"]
            roll = rng.random()
            if roll < 0.04:  # vanish mid-task: come back later under a new name
                generation += 1
                name = f"agent-{slot}-gen{generation}"
                continue
            if roll < 0.08:
                http.post(f"{server.url}/api/tasks/{task['id']}/fail", timeout=30,
                          json={"error": "transient", "canRetry": True})
                continue
            done = http.post(f"{server.url}/api/tasks/{task['id']}/complete", timeout=30,
                             json={"result": f"by {name}", "outputs": {"n": 1}})
            if done.status_code == 200:
                with ack_lock:
                    acknowledged.append((task["id"], name))
            elif done.status_code != 409:  # 409: lease lost to a reclaim, a normal outcome
                errors.append(f"complete {done.status_code} {done.text}")

    threads = [threading.Thread(target=agent, args=(slot,)) for slot in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    reaper.terminate()
    reaper.wait(timeout=10)
    assert not errors, errors[:5]

    tasks = all_tasks(server, project["id"])
    assert len(tasks) == 1000
    by_status = Counter(t["status"] for t in tasks)
    assert by_status["queued"] == 0 and by_status["running"] == 0
    assert by_status["completed"] + by_status["failed"] == 1000
    acked = Counter(task_id for task_id, _ in acknowledged)
    assert all(count == 1 for count in acked.values()), "a completion acknowledged twice"
    completed = {t["id"]: t for t in tasks if t["status"] == "completed"}
    assert set(acked) == set(completed)
    for task_id, agent_name in acknowledged:
        task = completed[task_id]
        assert task["result"] == f"by {agent_name}"
        assert [a["status"] for a in task["attempts"]].count("completed") == 1
        assert task["attempts"][-1] == {**task["attempts"][-1], "status": "completed",
                                        "agentName": agent_name}
    for task in tasks:
        attempts = task["attempts"]
        for earlier, later in zip(attempts, attempts[1:]):
            assert earlier["endedAt"] is not None
            assert earlier["endedAt"] <= later["startedAt"], f"overlap on {task['id']}"
        unsuccessful = [a for a in attempts if a["status"] in ("failed", "timeout")]
        assert task["retryCount"] == min(len(unsuccessful), max_retries)
        if task["status"] == "failed":
            assert len(unsuccessful) == max_retries + 1
    stats = operator(server, "GET", f"/api/projects/{project['id']}/stats")["data"]
    assert stats["project"]["stats"] == {
        "totalTasks": 1000, "completedTasks": by_status["completed"],
        "failedTasks": by_status["failed"], "queuedTasks": 0, "runningTasks": 0}
    assert stats["recentActivity"]["tasksCompletedLastHour"] == by_status["completed"]
    assert stats["recentActivity"]["tasksFailedLastHour"] == by_status["failed"]
    assert "Traceback" not in server.log()


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
