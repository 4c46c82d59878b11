"""`taskdriver work` and the fleet controls, with a real command against a real gunicorn:
a cancelled task's command is stopped and nothing is reported for it; `::progress` lines on
stderr become the task's progress and stay out of its error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskdriver.client import Client
from taskdriver.console.command_io import Throttle, parse_progress

from conftest import ADMIN_TOKEN
from live_server import LiveServer, serving

pytestmark = pytest.mark.slow
TASKDRIVER = Path(sys.executable).parent / "taskdriver"
LEASE_MINUTES = 0.05  # 3 s: the lease keeper asks every second


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("work-controls") / "data", 2,
                 TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as live:
        yield live


@pytest.fixture
def operator(server: LiveServer) -> Client:
    return Client(server.url, ADMIN_TOKEN)


def start_work(server: LiveServer, project: str, script: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TASKDRIVER_URL": server.url, "TASKDRIVER_TOKEN": ADMIN_TOKEN}
    return subprocess.Popen([str(TASKDRIVER), "work", "-p", project, "-a", "w",
                             "--max-tasks", "1", "--permanent-exit-codes", "3", "--",
                             "sh", "-c", script], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(check: object, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_cancelled_tasks_command_is_stopped_and_nothing_reported(
        server: LiveServer, operator: Client, tmp_path: Path) -> None:
    project = operator.create_project("cancel-work")
    kind = operator.create_task_type(project["id"], "slow",
                                     leaseDurationMinutes=LEASE_MINUTES)
    task = operator.create_task(project["id"], instructions="x", type_id=kind["id"])
    pid_file = tmp_path / "pid"
    work = start_work(server, "cancel-work", f"echo $$ > {pid_file}; sleep 120")
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
        command_pid = int(pid_file.read_text())
        operator.cancel_task(task["id"], "not needed any more")
        cancelled_at = time.monotonic()
        _, stderr = work.communicate(timeout=60)
        took = time.monotonic() - cancelled_at
    finally:
        if work.poll() is None:
            work.kill()
            work.wait()
    assert work.returncode == 0, stderr
    assert took < 15, took  # a keeper period (1 s) and the stop, on a busy machine
    assert not alive(command_pid)
    assert "cancelled" in stderr and "1 cancelled" in stderr, stderr
    stored = operator.get_task(task["id"])
    assert stored["status"] == "cancelled" and stored["error"] == "not needed any more"
    assert stored["result"] is None and stored["attempts"][-1]["status"] == "cancelled"


def test_progress_lines_are_sent_and_left_out_of_the_error(
        server: LiveServer, operator: Client) -> None:
    project = operator.create_project("progress-work")
    task = operator.create_task(project["id"], instructions="x")
    script = ("echo '::progress 10 starting' >&2; sleep 1.5; "
              "echo '::progress 60 halfway there' >&2; echo 'ordinary trouble' >&2; "
              "sleep 0.2; exit 3")
    work = start_work(server, "progress-work", script)
    seen = []

    def progressed() -> bool:
        seen.append(operator.get_task(task["id"]).get("progress"))
        return seen[-1] == 10

    try:
        wait_for(progressed)  # sent while the command still runs
        _, stderr = work.communicate(timeout=60)
    finally:
        if work.poll() is None:
            work.kill()
            work.wait()
    stored = operator.get_task(task["id"])
    assert stored["status"] == "failed", stderr
    assert stored["error"] == "ordinary trouble"
    assert (stored["progress"], stored["progressMessage"]) == (60, "halfway there")


def test_progress_is_sent_at_most_once_a_second_the_latest_kept() -> None:
    sent: list[tuple[float | None, str | None]] = []
    throttle = Throttle(lambda progress, message: sent.append((progress, message)))
    for step in range(5):
        throttle.offer(step * 10, f"step {step}")
    assert sent == [(0, "step 0")]
    throttle.flush()
    assert sent == [(0, "step 0"), (40, "step 4")]
    assert parse_progress(b"::progress 55.5 nearly\n") == (55.5, "nearly")
    assert parse_progress(b"::progress 100\n") == (100, None)
    assert parse_progress(b"::progress 101 too far\n") is None
    assert parse_progress(b"::progress lots\n") is None
    assert parse_progress(b"progress 5\n") is None


def taskdriver(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKDRIVER_URL": server.url, "TASKDRIVER_TOKEN": ADMIN_TOKEN}
    done = subprocess.run([str(TASKDRIVER), *args], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def test_console_pause_resume_cancel_and_status(server: LiveServer, operator: Client) -> None:
    project = operator.create_project("console-controls")
    taskdriver(server, "new-type", "-p", "console-controls", "kind", "--max-concurrent", "2",
               "--rate-limit", "5/60")
    kind = operator.task_type_id(project["id"], "kind")
    for _ in range(3):
        operator.create_task(project["id"], instructions="x", type_id=kind)
    held = operator.next_task("w1", project["id"])
    assert held is not None
    operator.report_progress(held["id"], 40, "halfway", agent_name="w1")

    taskdriver(server, "pause", "-p", "console-controls")
    assert operator.get_project(project["id"])["paused"] is True
    assert "PAUSED" in taskdriver(server, "status", "-p", "console-controls").stdout
    taskdriver(server, "resume", "-p", "console-controls")
    taskdriver(server, "pause", "-p", "console-controls", "-t", "kind")
    assert operator.next_task("w2", project["id"]) is None
    status = taskdriver(server, "status", "-p", "console-controls").stdout
    assert "1/2 running, at most 5 leases per 60s, PAUSED" in status, status
    assert "40% halfway" in status, status
    taskdriver(server, "resume", "-p", "console-controls", "--type", "kind")
    assert operator.get_task_type(kind)["paused"] is False

    taskdriver(server, "cancel", held["id"], "--reason", "enough")
    assert operator.get_task(held["id"])["error"] == "enough"
    bulk = taskdriver(server, "cancel", "-p", "console-controls", "--status", "queued")
    assert "cancelled 2 tasks" in bulk.stderr
    assert "3 cancelled" in taskdriver(server, "status", "-p", "console-controls").stdout
