"""Fleet controls across processes: a real gunicorn with several workers, on both backends.

Each worker process claims on its own; the limits must hold across all of them (on
PostgreSQL through the database, on files through the journal every worker replays).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from conftest import ADMIN_TOKEN, ALL_BACKENDS, postgres_schema
from live_server import LiveServer, serving

pytestmark = pytest.mark.slow
BACKENDS = ALL_BACKENDS
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WORKERS = 3
AGENTS = 40
TIMEOUT = 30.0  # per request, on a busy 2-core machine


@pytest.fixture
def server(tmp_path: Path, backend: str) -> Iterator[LiveServer]:
    with ExitStack() as stack:
        env = {"TASKDRIVER_ADMIN_TOKEN": ADMIN_TOKEN}
        if backend == "postgresql":
            env["TASKDRIVER_STORAGE_URL"] = stack.enter_context(postgres_schema())
        yield stack.enter_context(serving(tmp_path / "data", WORKERS, **env))


class Client:
    """The operator's JSON calls to the live server, one connection per thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.local = threading.local()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        response = session.request(method, f"{self.url}{path}", json=body, headers=HEADERS,
                                   timeout=TIMEOUT)
        assert response.status_code in (200, 201), response.text
        return response.json()["data"]

    def setup(self, **limited: Any) -> tuple[str, str, str]:
        """A project with a controlled type and a free one; returns their ids."""
        project = self.call("POST", "/api/projects", {"name": "fleet"})["id"]
        kinds = [self.call("POST", f"/api/projects/{project}/task-types",
                           {"name": name, **fields})["id"]
                 for name, fields in (("limited", limited), ("free", {}))]
        return project, kinds[0], kinds[1]

    def fill(self, project: str, type_id: str, count: int) -> None:
        tasks = [{"typeId": type_id, "instructions": "work"}] * count
        self.call("POST", f"/api/projects/{project}/tasks/bulk", {"tasks": tasks})

    def lease(self, agent: str, project: str) -> dict[str, Any] | None:
        task: dict[str, Any] | None = self.call(
            "POST", f"/api/agents/{agent}/next-task", {"projectId": project})["task"]
        return task


def _moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_forty_agents_never_run_more_than_the_limit(server: LiveServer) -> None:
    client = Client(server.url)
    project, limited, free = client.setup(maxConcurrent=3)
    client.fill(project, limited, 30)
    client.fill(project, free, 60)
    stop = threading.Event()
    samples: list[int] = []
    done: dict[str, int] = {limited: 0, free: 0}
    lock = threading.Lock()

    def sample() -> None:
        while not stop.is_set():
            running = client.call("GET", f"/api/projects/{project}/tasks?status=running"
                                  f"&typeId={limited}&limit=1000")
            samples.append(len(running))
            time.sleep(0.05)

    def agent(number: int) -> None:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            task = client.lease(f"agent-{number}", project)
            if task is None:
                time.sleep(0.2)
                continue
            time.sleep(0.3)  # working: the limited type's three slots stay taken a while
            client.call("POST", f"/api/tasks/{task['id']}/complete",
                        {"agentName": f"agent-{number}"})
            with lock:
                done[task["typeId"]] += 1

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(AGENTS) as pool:
            list(pool.map(agent, range(AGENTS)))
    finally:
        stop.set()
        sampler.join()
    assert samples and max(samples) <= 3, samples
    assert max(samples) == 3, samples  # the limit was reached, not merely never tested
    assert done[free] == 60, done  # the other type flowed past the full one
    assert done[limited] >= 6, done  # and the limited one kept moving, three at a time


def test_a_rate_limit_holds_in_every_window(server: LiveServer) -> None:
    client = Client(server.url)
    project, limited, _ = client.setup(rateLimit={"count": 5, "perSeconds": 2})
    client.fill(project, limited, 100)
    starts: list[float] = []
    lock = threading.Lock()

    def agent(number: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            task = client.lease(f"agent-{number}", project)
            if task is None:
                time.sleep(0.05)
                continue
            with lock:
                starts.append(_moment(task["assignedAt"]))
            client.call("POST", f"/api/tasks/{task['id']}/complete",
                        {"agentName": f"agent-{number}"})

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(agent, range(20)))
    starts.sort()
    busiest = max(sum(1 for s in starts if first <= s < first + 2) for first in starts)
    assert busiest <= 5, starts
    assert len(starts) >= 15, starts  # the limit paced the leases; it did not stop them


def test_pause_and_resume_hold_across_workers(server: LiveServer) -> None:
    client = Client(server.url)
    project, paused, free = client.setup()
    client.fill(project, paused, 5)
    client.call("PUT", f"/api/task-types/{paused}", {"paused": True})
    assert [client.lease(f"a{n}", project) for n in range(6)] == [None] * 6
    client.call("PUT", f"/api/task-types/{paused}", {"paused": False})
    client.call("PUT", f"/api/projects/{project}", {"paused": True})
    assert [client.lease(f"a{n}", project) for n in range(6)] == [None] * 6
    client.call("PUT", f"/api/projects/{project}", {"paused": False})
    leased = client.lease("a0", project)
    assert leased is not None and leased["typeId"] == paused


def test_a_waiting_poll_respects_a_pause_and_wakes_on_a_resume(server: LiveServer) -> None:
    client = Client(server.url)
    project, kind, _ = client.setup()

    def poll(agent: str, wait: float) -> tuple[float, Any]:
        started = time.monotonic()
        task = client.call("POST", f"/api/agents/{agent}/next-task",
                           {"projectId": project, "waitSeconds": wait})["task"]
        return time.monotonic() - started, task

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(poll, "a1", 6)
        time.sleep(1.5)  # the poll is waiting by now
        client.call("PUT", f"/api/projects/{project}", {"paused": True})
        client.fill(project, kind, 1)  # wakes the poll, which must not lease it
        _, task = waiting.result(timeout=60)
    assert task is None
    client.call("PUT", f"/api/projects/{project}", {"paused": False})
    client.call("PUT", f"/api/task-types/{kind}", {"paused": True})
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(poll, "a2", 20)
        time.sleep(1.5)
        assert not waiting.done()
        client.call("PUT", f"/api/task-types/{kind}", {"paused": False})
        took, task = waiting.result(timeout=60)
    assert task is not None and task["typeId"] == kind
    assert took < 15, took  # woken by the resume, not by its 20 s wait


def test_resuming_a_project_wakes_a_waiting_poll(server: LiveServer) -> None:
    # The project lives in the global records, not beside its tasks: its resume must reach
    # the watcher of the project's tasks too (file signature, PostgreSQL NOTIFY).
    client = Client(server.url)
    project, kind, _ = client.setup()
    client.fill(project, kind, 1)
    client.call("PUT", f"/api/projects/{project}", {"paused": True})

    def poll() -> tuple[float, Any]:
        started = time.monotonic()
        task = client.call("POST", "/api/agents/a1/next-task",
                           {"projectId": project, "waitSeconds": 20})["task"]
        return time.monotonic() - started, task

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(poll)
        time.sleep(1.5)  # the poll is waiting by now
        assert not waiting.done()
        resumed_at = time.monotonic()
        client.call("PUT", f"/api/projects/{project}", {"paused": False})
        _, task = waiting.result(timeout=60)
        woke_after = time.monotonic() - resumed_at
    assert task is not None and task["typeId"] == kind
    assert woke_after < 8, woke_after  # woken by the resume, not by its 20 s wait
