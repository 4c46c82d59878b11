"""A fleet waiting at once under a real gunicorn: hundreds of long polls leave every other
request prompt, a new task wakes a bounded number of them, an ended session's poll ends,
and SIGTERM answers every poll (`make fleet` runs the full thousand)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from conftest import ADMIN_TOKEN, ALL_BACKENDS, postgres_schema
from fleet import Connection, call, fleet_server, login_all, run
from live_server import serving

pytestmark = pytest.mark.slow
BACKENDS = ALL_BACKENDS
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WAITERS = 300  # over four times what stalled the server before (64 threads in all)
WORKERS = 2


def test_hundreds_of_waiting_polls_leave_other_requests_prompt(backend: str) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(postgres_schema()) if backend == "postgresql" else None
        report = run(WAITERS, tasks=10, idle_seconds=3, busy_seconds=6, workers=WORKERS,
                     storage_url=url)
    assert report["errors"] == []
    # Prompt, on a busy 2-core machine: before, a /health queued behind waiting polls
    # took 7 s or timed out after 10 s.
    assert report["health_p99_ms"] < 3000, report
    assert report["complete_p99_ms"] < 3000, report
    assert report["task_reached_waiter_p99_ms"] < 3000, report
    # One new task wakes at most one waiter per worker process, not all of them.
    assert report["wakeups_per_task"] <= WORKERS + 1, report
    assert report["sigterm_polls_answered"] == WAITERS
    assert report["sigterm_polls_cut_off"] == 0
    assert report["sigterm_all_answered_s"] < 30  # gunicorn's graceful timeout


def test_a_poll_beyond_the_process_capacity_is_refused_and_others_still_served(
        tmp_path: Path) -> None:
    """8 threads: 7 polls may wait; the 8th gets 503 with Retry-After, /health still
    answers on the thread kept free."""
    with serving(tmp_path / "data", 1, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN,
                 TASKDRIVER_THREADS="8") as server:
        project = requests.post(f"{server.url}/api/projects", headers=HEADERS,
                                json={"name": "full"}, timeout=30).json()["data"]["id"]

        def poll(number: int) -> requests.Response:
            return requests.post(f"{server.url}/api/agents/a{number}/next-task",
                                 headers=HEADERS, timeout=60,
                                 json={"projectId": project, "waitSeconds": 20})

        with ThreadPoolExecutor(7) as pool:
            waiting = [pool.submit(poll, number) for number in range(7)]
            deadline = time.monotonic() + 30
            while "taskdriver_long_polls_waiting 7.0" not in requests.get(
                    f"{server.url}/metrics", timeout=30).text:
                assert time.monotonic() < deadline, "the 7 polls never all waited"
                time.sleep(0.2)
            refused = poll(7)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "2"
            assert "TASKDRIVER_THREADS" in refused.json()["error"]
            assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
            server.process.send_signal(15)  # type: ignore[union-attr]
            assert [f.result(timeout=60).json()["success"] for f in waiting] == [False] * 7


def test_a_newer_login_ends_the_earlier_sessions_waiting_poll(tmp_path: Path,
                                                              backend: str) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(postgres_schema()) if backend == "postgresql" else None
        server = stack.enter_context(fleet_server(tmp_path, WORKERS, url))

        async def scenario() -> tuple[float, int, dict]:
            project = (await call(server.port, ADMIN_TOKEN, "POST", "/api/projects",
                                  {"name": "relogin"}))["data"]["id"]
            [token] = await login_all(server.port, project, ["bot"])
            connection = Connection(server.port, token)
            poll = asyncio.create_task(connection.request(
                "POST", "/api/agents/bot/next-task", {"waitSeconds": 25}))
            await asyncio.sleep(2)  # waiting by now
            assert not poll.done()
            await login_all(server.port, project, ["bot"])
            ended_at = time.perf_counter()
            status, body = await poll
            connection.close()
            return time.perf_counter() - ended_at, status, body

        elapsed, status, body = asyncio.run(scenario())
    assert status == 401
    assert "newer login" in body["error"]
    assert elapsed < 5, f"answered {elapsed:.1f} s after the newer login"  # checked each second


def test_after_sigterm_a_restarted_server_hands_the_waiters_work(tmp_path: Path) -> None:
    with serving(tmp_path / "data", WORKERS, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as server:
        project = requests.post(f"{server.url}/api/projects", headers=HEADERS,
                                json={"name": "restart"}, timeout=30).json()["data"]["id"]

        def poll() -> dict:
            return requests.post(f"{server.url}/api/agents/a1/next-task", headers=HEADERS,
                                 timeout=60,
                                 json={"projectId": project, "waitSeconds": 25}).json()

        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(poll)
            time.sleep(2)
            started = time.monotonic()
            server.stop()
            assert waiting.result(timeout=60)["success"] is False
            assert time.monotonic() - started < 20
            server.start()
            waiting = pool.submit(poll)
            time.sleep(2)
            task = requests.post(f"{server.url}/api/projects/{project}/tasks", headers=HEADERS,
                                 json={"instructions": "after the restart"},
                                 timeout=30).json()["data"]
            assert waiting.result(timeout=60)["data"]["task"]["id"] == task["id"]
