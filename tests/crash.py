"""Crash: `kill -9` every server process at random moments while agents lease and complete.

    python tests/crash.py [--rounds 20] [--tasks 2000] [--agents 8]   (what `make crash` runs)

Agents retry a request whose connection died (a lease is resumed, a completion is
idempotent), exactly as a real fleet would. After every kill the server must restart on the
same data; at the end every success any client received must be in storage, and no task may
be lost, duplicated, or completed twice. `tests/test_crash.py` runs a shorter one in
`make test`.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ADMIN_TOKEN  # noqa: E402
from live_server import LiveServer  # noqa: E402
from soak import all_tasks, operator  # noqa: E402


@dataclass
class CrashLedger:
    """Every success a client was told about, to be checked against storage."""

    leases: list[tuple[str, str, str]] = field(default_factory=list)  # task, agent, attempt
    completions: list[tuple[str, str]] = field(default_factory=list)  # task, agent
    lock: threading.Lock = field(default_factory=threading.Lock)


def _until_answered(call: Callable[[], requests.Response], stop: threading.Event
                    ) -> requests.Response | None:
    """Repeat a request until the server answers it (it may be down between kills)."""
    while not stop.is_set():
        try:
            return call()
        except requests.RequestException:
            time.sleep(0.05)
    return None


def _agent(url: str, project_name: str, name: str, ledger: CrashLedger,
           stop: threading.Event) -> None:
    http = requests.Session()
    login = _until_answered(lambda: http.post(
        f"{url}/api/auth/login", json={"agentName": name, "projectId": project_name},
        timeout=10), stop)
    if login is None:
        return
    http.headers["Authorization"] = f"Bearer {login.json()['data']['token']}"
    while not stop.is_set():
        leased = _until_answered(lambda: http.post(
            f"{url}/api/agents/{name}/next-task", json={}, timeout=10), stop)
        if leased is None:
            return
        body = leased.json()
        if not body.get("success"):
            return  # drained
        task = body["data"]["task"]
        with ledger.lock:
            ledger.leases.append((task["id"], name, task["attempts"][-1]["id"]))
        done = _until_answered(partial(
            http.post, f"{url}/api/tasks/{task['id']}/complete", timeout=10,
            json={"result": f"by {name}", "outputs": {"ok": True}}), stop)
        if done is None:
            return
        assert done.status_code == 200, done.text  # long leases: nobody else can take it
        with ledger.lock:
            ledger.completions.append((task["id"], name))


def run_crash(data_dir: Path, rounds: int, tasks: int, agents: int,
              seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    server = LiveServer(data_dir, workers=3, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN).start()
    project = operator(server, "POST", "/api/projects", json={
        "name": "crash", "config": {"defaultLeaseDurationMinutes": 60}})["data"]
    for start in range(0, tasks, 1000):
        operator(server, "POST", f"/api/projects/{project['id']}/tasks/bulk", json={
            "tasks": [{"instructions": f"task {i}"}
                      for i in range(start, min(tasks, start + 1000))]})
    ledger, stop = CrashLedger(), threading.Event()
    threads = [threading.Thread(target=_agent, args=(server.url, "crash", f"agent-{i}",
                                                     ledger, stop)) for i in range(agents)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(rounds):
            time.sleep(rng.uniform(0.2, 1.0))
            server.kill()
            completed_before_last_kill = len(ledger.completions)
            server.start()  # storage must load, every time
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        result = verify(server, project["id"], ledger, tasks)
        result["completed_before_last_kill"] = completed_before_last_kill
    finally:
        stop.set()
        server.stop()
    return result


def verify(server: LiveServer, project_id: str, ledger: CrashLedger, loaded: int
           ) -> dict[str, Any]:
    stored = {t["id"]: t for t in all_tasks(server, project_id)}
    assert len(stored) == loaded, f"{loaded - len(stored)} tasks lost or duplicated"
    for task_id, agent, attempt_id in ledger.leases:
        task = stored[task_id]
        assert any(a["id"] == attempt_id and a["agentName"] == agent
                   for a in task["attempts"]), f"acknowledged lease of {task_id} lost"
    for task_id, agent in ledger.completions:
        task = stored[task_id]
        assert task["status"] == "completed", f"acknowledged completion of {task_id} lost"
        assert task["result"] == f"by {agent}"
    for task in stored.values():
        attempts = task["attempts"]
        assert [a["status"] for a in attempts].count("completed") <= 1
        assert all(a["status"] != "running" for a in attempts[:-1])
        for earlier, later in pairwise(attempts):
            assert earlier["endedAt"] is not None and earlier["endedAt"] <= later["startedAt"]
    completed = sum(1 for t in stored.values() if t["status"] == "completed")
    return {"tasks": loaded, "completed": completed, "leases_acknowledged": len(ledger.leases),
            "completions_acknowledged": len(ledger.completions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--agents", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskdriver-crash-") as root:
        result = run_crash(Path(root) / "data", args.rounds, args.tasks, args.agents)
    assert result["completed_before_last_kill"] < args.tasks, "work ran out before the kills"
    print(f"crash passed: {args.rounds} rounds of kill -9 on every server process; "
          f"{result['completions_acknowledged']} acknowledged completions and "
          f"{result['leases_acknowledged']} acknowledged leases all in storage; "
          f"{result['tasks']} tasks, none lost or duplicated")


if __name__ == "__main__":
    main()
