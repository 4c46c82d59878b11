"""Long-polling next-task under a real gunicorn: wakes on work from anywhere, costs nothing
while it waits, and never blocks other requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from conftest import ADMIN_TOKEN, ALL_BACKENDS, postgres_schema, postgres_unavailable
from live_server import LiveServer, serving
from soak import operator

pytestmark = pytest.mark.slow
BACKENDS = ALL_BACKENDS  # for the tests that take `backend`
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@contextmanager
def hosts(tmp_path: Path, backend: str, count: int = 1) -> Iterator[list[LiveServer]]:
    """`count` servers (2 workers each) on one storage: a data dir, or one database."""
    with ExitStack() as stack:
        env = {"TASKDRIVER_ADMIN_TOKEN": ADMIN_TOKEN}
        if backend == "postgresql":
            env["TASKDRIVER_STORAGE_URL"] = stack.enter_context(postgres_schema())
        servers = [stack.enter_context(serving(tmp_path / "data", 2, **env))
                   for _ in range(count)]
        yield servers


def long_poll(server: LiveServer, project_id: str, agent: str, wait: float
              ) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    body = requests.post(f"{server.url}/api/agents/{agent}/next-task", headers=HEADERS,
                         json={"projectId": project_id, "waitSeconds": wait},
                         timeout=wait + 30).json()
    return time.monotonic() - started, body


def wakes_on_a_task_created_elsewhere(waiter: LiveServer, creator: LiveServer,
                                      name: str = "poll") -> None:
    project = operator(waiter, "POST", "/api/projects", json={"name": name})["data"]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(long_poll, waiter, project["id"], "w1", 25)
        time.sleep(2)  # the poll is waiting by now
        assert not pending.done()
        created_at = time.monotonic()
        task = operator(creator, "POST", f"/api/projects/{project['id']}/tasks",
                        json={"instructions": "wake up"})["data"]
        elapsed, body = pending.result(timeout=60)
    assert body["success"] is True and body["data"]["task"]["id"] == task["id"]
    woke_after = time.monotonic() - created_at
    assert woke_after < 1.0, f"woke {woke_after:.2f} s after the task was created"
    assert elapsed < 20


def test_a_long_poll_wakes_within_a_second_of_new_work(tmp_path: Path, backend: str) -> None:
    with hosts(tmp_path, backend) as (server,):
        # The creating request lands on any of the workers: another process than the waiter's
        # most of the time; each run of this test tries it several times over.
        for attempt in range(3):
            wakes_on_a_task_created_elsewhere(server, server, f"poll-{attempt}")


def test_a_long_poll_wakes_when_another_host_adds_work(tmp_path: Path) -> None:
    if postgres_unavailable():
        pytest.skip(postgres_unavailable() or "")
    with hosts(tmp_path, "postgresql", count=2) as (first, second):
        wakes_on_a_task_created_elsewhere(first, second)


def test_with_nothing_to_give_the_poll_ends_at_its_wait(tmp_path: Path) -> None:
    with hosts(tmp_path, "file") as (server,):
        project = operator(server, "POST", "/api/projects", json={"name": "idle"})["data"]
        elapsed, body = long_poll(server, project["id"], "w", 2)
        assert body["success"] is False and body["error"] == "No tasks available for assignment"
        assert 2 <= elapsed < 10


def test_a_lease_that_expires_is_handed_to_the_waiter(tmp_path: Path) -> None:
    with hosts(tmp_path, "file") as (server,):
        project = operator(server, "POST", "/api/projects", json={
            "name": "expiry", "config": {"defaultLeaseDurationMinutes": 0.05}})["data"]
        task = operator(server, "POST", f"/api/projects/{project['id']}/tasks",
                        json={"instructions": "x"})["data"]
        operator(server, "POST", "/api/agents/crashed/next-task",
                 json={"projectId": project["id"]})
        elapsed, body = long_poll(server, project["id"], "rescuer", 20)
        assert body["data"]["task"]["id"] == task["id"]
        assert 2 <= elapsed < 8  # the 3 s lease ran out, nobody created anything


def server_cpu_seconds(server: LiveServer) -> float:
    master = psutil.Process(server.pid)
    total = 0.0
    for process in [master, *master.children(recursive=True)]:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def test_twenty_waiting_agents_cost_under_five_percent_of_a_core(tmp_path: Path) -> None:
    with hosts(tmp_path, "file") as (server,):
        project = operator(server, "POST", "/api/projects", json={"name": "quiet"})["data"]
        with ThreadPoolExecutor(20) as pool:
            polls = [pool.submit(long_poll, server, project["id"], f"w{i}", 25)
                     for i in range(20)]
            time.sleep(2)  # all waiting
            before, started = server_cpu_seconds(server), time.monotonic()
            time.sleep(6)
            used = (server_cpu_seconds(server) - before) / (time.monotonic() - started)
            operator(server, "POST", f"/api/projects/{project['id']}/tasks/bulk",
                     json={"tasks": [{"instructions": "go"}] * 20})
            bodies = [poll.result(timeout=60)[1] for poll in polls]
        assert used < 0.05, f"the server used {used:.1%} of a core for 20 idle waiters"
        assert sum(body["success"] for body in bodies) == 20


def test_health_and_reads_answer_while_twelve_polls_wait(tmp_path: Path) -> None:
    with hosts(tmp_path, "file") as (server,):
        project = operator(server, "POST", "/api/projects", json={"name": "busy"})["data"]
        with ThreadPoolExecutor(12) as pool:  # polls outlast the reads below
            polls = [pool.submit(long_poll, server, project["id"], f"w{i}", 8)
                     for i in range(12)]
            time.sleep(2)
            for _ in range(10):
                for path in ("/health", f"/api/projects/{project['id']}/stats"):
                    started = time.monotonic()
                    response = requests.get(f"{server.url}{path}", headers=HEADERS, timeout=30)
                    assert response.status_code == 200
                    assert time.monotonic() - started < 1.0, path
            for poll in polls:
                poll.result(timeout=60)


def test_a_long_poll_is_one_request_for_the_rate_limit(tmp_path: Path) -> None:
    with serving(tmp_path / "data", 2, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN,
                 TASKDRIVER_RATE_LIMIT="50 per 15 minutes") as server:
        project = operator(server, "POST", "/api/projects", json={"name": "limited"})["data"]
        first = requests.post(f"{server.url}/api/agents/w/next-task", headers=HEADERS,
                              json={"projectId": project["id"], "waitSeconds": 3}, timeout=30)
        second = requests.get(f"{server.url}/api/projects/{project['id']}", headers=HEADERS,
                              timeout=30)
        assert int(first.headers["X-RateLimit-Remaining"]) == \
            int(second.headers["X-RateLimit-Remaining"]) + 1


def test_a_long_poll_wakes_when_a_delayed_task_comes_due(tmp_path: Path, backend: str
                                                         ) -> None:
    with hosts(tmp_path, backend) as (server,):
        project = operator(server, "POST", "/api/projects", json={"name": "later"})["data"]
        task = operator(server, "POST", f"/api/projects/{project['id']}/tasks",
                        json={"instructions": "x", "delaySeconds": 3})["data"]
        elapsed, body = long_poll(server, project["id"], "w", 20)
        assert body["data"]["task"]["id"] == task["id"]
        assert 2.5 <= elapsed < 8
