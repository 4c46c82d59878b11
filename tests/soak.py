"""Soak: a real gunicorn, the reaper CLI looping beside it, many agents, some vanishing.

    python tests/soak.py [--agents 32] [--tasks 5000] [--workers 4]   (what `make soak` runs)

Afterwards every task must be `completed` exactly once or `failed` by its retry rules, no
two attempts on one task may overlap in time, and `/stats`, `/metrics` and the task list
must agree. `tests/test_live_queue.py` runs a shorter soak inside `make test`.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ADMIN_TOKEN  # noqa: E402
from live_server import BIN, ROOT, LiveServer  # noqa: E402

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LEASE_MINUTES = 0.05  # 3 s, the shortest lease allowed


@dataclass
class SoakReport:
    project_id: str
    max_retries: int
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (task, agent) 200s
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def operator(server: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, f"{server.url}{path}", headers=HEADERS, timeout=60,
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


def _agent(server: LiveServer, report: SoakReport, slot: int, vanish_share: float,
           lock: threading.Lock) -> None:
    """Work until the queue is drained; now and then vanish mid-task and return renamed."""
    rng = random.Random(slot)
    http = requests.Session()
    name, generation = f"agent-{slot}", 0

    def login() -> None:
        body = http.post(f"{server.url}/api/auth/login", timeout=60, json={
            "agentName": name, "projectId": report.project_id}).json()
        http.headers["Authorization"] = f"Bearer {body['data']['token']}"

    login()
    idle_since = None
    while True:
        response = http.post(f"{server.url}/api/agents/{name}/next-task", json={}, timeout=60)
        if response.status_code == 403:  # a new name needs its own session
            login()
            continue
        body = response.json()
        if response.status_code != 200:
            report.errors.append(f"next-task {response.status_code} {body}")
            return
        if not body["success"]:
            stats = http.get(f"{server.url}/api/projects/{report.project_id}/stats",
                             timeout=60).json()["data"]
            if stats["project"]["stats"]["runningTasks"] == 0 and stats["queueDepth"] == 0:
                return
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 120:
                report.errors.append("stuck waiting for tasks")
                return
            time.sleep(0.2)
            continue
        idle_since = None
        task = body["data"]["task"]
        roll = rng.random()
        if roll < vanish_share:  # crash mid-task; come back later under a new name
            generation += 1
            name = f"agent-{slot}-gen{generation}"
            continue
        if roll < 2 * vanish_share:
            http.post(f"{server.url}/api/tasks/{task['id']}/fail", timeout=60,
                      json={"error": "transient", "canRetry": True})
            continue
        done = http.post(f"{server.url}/api/tasks/{task['id']}/complete", timeout=60,
                         json={"result": f"by {name}", "outputs": {"n": 1}})
        if done.status_code == 200:
            with lock:
                report.acknowledged.append((task["id"], name))
        elif done.status_code != 409:  # 409: the lease was lost to a reclaim, a normal outcome
            report.errors.append(f"complete {done.status_code} {done.text}")


def run_soak(server: LiveServer, agents: int, tasks: int, vanish_share: float = 0.04,
             max_retries: int = 3, reap_interval: float = 0.5,
             other_hosts: tuple[LiveServer, ...] = ()) -> SoakReport:
    """Load `tasks` tasks, drain them with `agents` threads while the reaper loops.

    With `other_hosts` (servers sharing the first one's database), agents are spread over
    every server, as a fleet behind a load balancer would be.
    """
    servers = (server, *other_hosts)
    project = operator(server, "POST", "/api/projects", json={
        "name": f"soak-{int(time.time() * 1000)}",
        "config": {"defaultLeaseDurationMinutes": LEASE_MINUTES,
                   "defaultMaxRetries": max_retries}})["data"]
    for start in range(0, tasks, 1000):
        operator(server, "POST", f"/api/projects/{project['id']}/tasks/bulk", json={
            "tasks": [{"instructions": f"task {i}"}
                      for i in range(start, min(tasks, start + 1000))]})
    report = SoakReport(project["id"], max_retries)
    reaper = subprocess.Popen(
        [str(BIN / "flask"), "--app", "taskdriver", "taskdriver", "reap", "--loop",
         "--interval", str(reap_interval)], cwd=ROOT, env=server.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = threading.Lock()
    started = time.monotonic()
    threads = [threading.Thread(target=_agent, args=(servers[slot % len(servers)], report,
                                                     slot, vanish_share, lock))
               for slot in range(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.monotonic() - started
    reaper.terminate()
    reaper.wait(timeout=30)
    return report


def counter_total(name: str, project_id: str, *hosts: LiveServer) -> float:
    """A per-project Prometheus counter summed over hosts (0 where a host never counted)."""
    prefix = f'taskdriver_{name}_total{{project="{project_id}"'
    return sum(float(line.rsplit(" ", 1)[1])
               for host in hosts
               for line in requests.get(f"{host.url}/metrics", timeout=60).text.splitlines()
               if line.startswith(prefix))


def verify(server: LiveServer, report: SoakReport, tasks_loaded: int,
           other_hosts: tuple[LiveServer, ...] = ()) -> Counter:
    """Check every invariant of a drained soak; returns the final counts by status."""
    assert not report.errors, report.errors[:5]
    tasks = all_tasks(server, report.project_id)
    assert len(tasks) == tasks_loaded == len({t["id"] for t in tasks})
    by_status = Counter(t["status"] for t in tasks)
    assert by_status["queued"] == 0 and by_status["running"] == 0
    assert by_status["completed"] + by_status["failed"] == tasks_loaded
    acked = Counter(task_id for task_id, _ in report.acknowledged)
    assert all(count == 1 for count in acked.values()), "a completion acknowledged twice"
    completed = {t["id"]: t for t in tasks if t["status"] == "completed"}
    assert set(acked) == set(completed), "completed tasks and acknowledgements differ"
    for task_id, agent_name in report.acknowledged:
        task = completed[task_id]
        assert task["result"] == f"by {agent_name}"
        assert [a["status"] for a in task["attempts"]].count("completed") == 1
        assert task["attempts"][-1]["status"] == "completed"
        assert task["attempts"][-1]["agentName"] == agent_name
    for task in tasks:
        attempts = task["attempts"]
        for earlier, later in pairwise(attempts):
            assert earlier["endedAt"] is not None
            assert earlier["endedAt"] <= later["startedAt"], f"overlap on {task['id']}"
        unsuccessful = [a for a in attempts if a["status"] in ("failed", "timeout")]
        assert task["retryCount"] == min(len(unsuccessful), report.max_retries)
        if task["status"] == "failed":
            assert len(unsuccessful) == report.max_retries + 1
    stats = operator(server, "GET", f"/api/projects/{report.project_id}/stats")["data"]
    assert stats["project"]["stats"] == {
        "totalTasks": tasks_loaded, "completedTasks": by_status["completed"],
        "failedTasks": by_status["failed"], "queuedTasks": 0, "runningTasks": 0,
        "cancelledTasks": 0, "waitingTasks": 0, "archivedTasks": 0}
    assert stats["recentActivity"]["tasksCompletedLastHour"] == by_status["completed"]
    assert stats["recentActivity"]["tasksFailedLastHour"] == by_status["failed"]
    metrics = requests.get(f"{server.url}/metrics", timeout=60).text
    pid = report.project_id
    for status in ("queued", "running", "completed", "failed"):
        line = next(line for line in metrics.splitlines()
                    if line.startswith("taskdriver_tasks{") and f'project="{pid}"' in line
                    and f'status="{status}"' in line)
        assert float(line.rsplit(" ", 1)[1]) == by_status[status], line
    # Counters are per host (Prometheus scrapes each one): sum them over every host.
    assert counter_total("tasks_created", pid, server, *other_hosts) == tasks_loaded
    assert counter_total("tasks_completed", pid, server, *other_hosts) == \
        by_status["completed"]
    assert "Traceback" not in server.log()
    return by_status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--vanish", type=float, default=0.04,
                        help="share of leases abandoned mid-task (and as many failed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskdriver-soak-") as root:
        server = LiveServer(Path(root) / "data", workers=args.workers,
                            TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN).start()
        try:
            report = run_soak(server, args.agents, args.tasks, args.vanish)
            counts = verify(server, report, args.tasks)
        finally:
            server.stop()
    print(f"soak passed: {args.tasks} tasks, {args.agents} agents, {args.workers} workers in "
          f"{report.seconds:.1f} s: {counts['completed']} completed, {counts['failed']} "
          f"failed, {len(report.acknowledged)} completions acknowledged, 0 violations")


if __name__ == "__main__":
    main()
