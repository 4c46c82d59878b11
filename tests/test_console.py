"""The `taskdriver` command and `taskdriver.client` against a real gunicorn server."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskdriver.client import ApiError, Client, ServerUnreachable

from conftest import ADMIN_TOKEN
from live_server import LiveServer, serving

pytestmark = pytest.mark.slow
TASKDRIVER = Path(sys.executable).parent / "taskdriver"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("console") / "data", 3,
                 TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as live:
        yield live


@pytest.fixture
def operator(server: LiveServer) -> Client:
    return Client(server.url, ADMIN_TOKEN)


def run(server: LiveServer, *args: str, input: str | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKDRIVER_URL": server.url, "TASKDRIVER_TOKEN": ADMIN_TOKEN}
    return subprocess.run([str(TASKDRIVER), *args], input=input, capture_output=True,
                          text=True, env=env, timeout=timeout)


def start(server: LiveServer, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TASKDRIVER_URL": server.url, "TASKDRIVER_TOKEN": ADMIN_TOKEN}
    return subprocess.Popen([str(TASKDRIVER), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def children(pid: int) -> list[int]:
    """The process ids of `pid`'s children (Linux's /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_work_drains_200_tasks_four_at_a_time(server: LiveServer, operator: Client) -> None:
    project = operator.create_project("drain")
    operator.create_task_type("drain", "echo", template="word {{n}}")
    for start_at in (0, 100):
        operator.create_tasks_bulk(project["id"], [
            {"typeId": operator.task_type_id("drain", "echo"), "variables": {"n": str(i)}}
            for i in range(start_at, start_at + 100)])
    done = run(server, "work", "-p", "drain", "-a", "bot", "-c", "4", "--wait", "3", "--",
               "sh", "-c", 'printf "%s|%s" "$(cat)" "$TASKDRIVER_AGENT_NAME"')
    assert done.returncode == 0, done.stderr
    assert "worked 200 tasks" in done.stderr and "200 completed" in done.stderr
    tasks = list(operator.iter_tasks(project["id"]))
    assert len(tasks) == 200 and all(t["status"] == "completed" for t in tasks)
    for task in tasks:
        instructions, agent = task["result"].split("|")
        assert instructions == task["instructions"] and agent == task["attempts"][-1][
            "agentName"]
    assert {t["attempts"][-1]["agentName"] for t in tasks} <= {f"bot-{i}" for i in range(1, 5)}


def test_a_failing_command_fails_the_task_with_its_stderr(server: LiveServer,
                                                         operator: Client) -> None:
    project = operator.create_project("failing", config={"defaultMaxRetries": 0})
    retried = operator.create_task(project["id"], instructions="a")
    permanent = operator.create_task(project["id"], instructions="b",
                                     description="exits 3")
    script = 'read x; echo "bad input $x" >&2; [ "$x" = a ] && exit 1; exit 3'
    done = run(server, "work", "-p", "failing", "-a", "f", "--max-tasks", "2",
               "--permanent-exit-codes", "3", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    first, second = operator.get_task(retried["id"]), operator.get_task(permanent["id"])
    assert first["status"] == "failed" and first["error"] == "bad input a"  # no retries left
    assert second["status"] == "failed" and second["error"] == "bad input b"
    assert "failed  " in done.stderr


def test_stdout_that_is_one_json_object_is_the_outputs_too(server: LiveServer,
                                                           operator: Client) -> None:
    project = operator.create_project("outputs")
    task = operator.create_task(project["id"], instructions="x")
    run(server, "work", "-p", "outputs", "-a", "j", "--max-tasks", "1", "--",
        "sh", "-c", 'cat >/dev/null; echo \'{"findings": 2}\'')
    done = operator.get_task(task["id"])
    assert done["outputs"] == {"findings": 2} and json.loads(done["result"]) == {"findings": 2}


def test_killed_work_resumes_its_task_under_the_same_name(server: LiveServer,
                                                         operator: Client) -> None:
    project = operator.create_project("resume")
    task = operator.create_task(project["id"], instructions="slow")
    first = start(server, "work", "-p", "resume", "-a", "r", "--", "sh", "-c",
                  "cat >/dev/null; sleep 60")
    deadline = time.monotonic() + 60
    while operator.get_task(task["id"])["status"] != "running":
        assert time.monotonic() < deadline, "the first worker never leased the task"
        time.sleep(0.2)
    while not (commands := children(first.pid)):  # each in its own session, out of the
        assert time.monotonic() < deadline, "the command never started"  # worker's group
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # the worker, mid-task
    for command in commands:
        os.killpg(command, signal.SIGKILL)  # and its command, which would outlive it
    first.communicate()
    done = run(server, "work", "-p", "resume", "-a", "r", "--max-tasks", "1", "--",
               "sh", "-c", "cat")
    assert done.returncode == 0, done.stderr
    finished = operator.get_task(task["id"])
    assert finished["status"] == "completed" and finished["result"] == "slow"
    assert [a["agentName"] for a in finished["attempts"]] == ["r"]  # the same lease, resumed


def test_sigterm_lets_the_running_command_finish(server: LiveServer, operator: Client
                                                 ) -> None:
    project = operator.create_project("graceful")
    task = operator.create_task(project["id"], instructions="x")
    operator.create_task(project["id"], instructions="not taken")
    worker = start(server, "work", "-p", "graceful", "-a", "g", "--", "sh", "-c",
                   "cat >/dev/null; sleep 3; echo finished")
    deadline = time.monotonic() + 60
    while operator.get_task(task["id"])["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert operator.get_task(task["id"])["result"] == "finished"  # less its one newline
    assert "worked 1 tasks" in err
    assert operator.project_stats("graceful")["project"]["stats"]["queuedTasks"] == 1


def test_submit_then_export_round_trips_ten_thousand_tasks(server: LiveServer,
                                                           operator: Client,
                                                           tmp_path: Path) -> None:
    operator.create_project("bulk")
    operator.create_task_type("bulk", "file", template="Check {{path}}")
    lines = [json.dumps({"variables": {"path": f"src/{i}.py"}, "batchId": f"b{i % 3}"})
             for i in range(10_000)]
    source = tmp_path / "tasks.jsonl"
    source.write_text("\n".join(lines) + "\n")
    loaded = run(server, "submit", "-p", "bulk", "-t", "file", str(source))
    assert loaded.returncode == 0, loaded.stderr
    assert "created 10000, duplicates skipped 0, errors 0" in loaded.stderr
    jsonl = run(server, "export", "-p", "bulk")
    assert jsonl.returncode == 0, jsonl.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["variables"]["path"] for r in rows] == [f"src/{i}.py" for i in range(10_000)]
    assert {r["batchId"] for r in rows} == {"b0", "b1", "b2"}
    out = tmp_path / "tasks.csv"
    as_csv = run(server, "export", "-p", "bulk", "-f", "csv", "-b", "b1", "-o", str(out))
    assert as_csv.returncode == 0, as_csv.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(table) == 3333 and table[0]["status"] == "queued"
    assert json.loads(table[0]["variables"]) == {"path": "src/1.py"}


def test_submit_reports_refused_lines_and_exits_non_zero(server: LiveServer,
                                                         operator: Client) -> None:
    operator.create_project("refusals")
    body = '{"instructions": "fine"}\nnot json\n\n{"variables": {"x": "1"}}\n'
    result = run(server, "submit", "-p", "refusals", "-", input=body)
    assert result.returncode == 1
    assert "line 2: not JSON" in result.stderr
    assert "line 4: Validation failed: instructions" in result.stderr
    assert "created 1, duplicates skipped 0, errors 2" in result.stderr


def test_status_shows_depth_agents_and_batches(server: LiveServer, operator: Client) -> None:
    project = operator.create_project("watch")
    operator.create_tasks_bulk(project["id"], [{"instructions": "x"}] * 3, batch_id="nightly")
    Client(server.url, agent_name="looker", project="watch").next_task()
    shown = run(server, "status", "-p", "watch")
    assert shown.returncode == 0, shown.stderr
    assert "tasks: 2 queued, 1 running, 0 completed, 0 failed, 0 waiting (3 in all)" in shown.stdout
    assert "looker" in shown.stdout and "left" in shown.stdout
    assert "nightly" in shown.stdout and "0/3 completed" in shown.stdout


def test_errors_are_one_line_with_the_correlation_id(server: LiveServer) -> None:
    missing = run(server, "status", "-p", "no-such-project")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: HTTP 404: Project")
    assert "Traceback" not in missing.stderr
    down = subprocess.run([str(TASKDRIVER), "--url", "http://127.0.0.1:9", "status"],
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 1 and "cannot reach the TaskDriver server at " \
        "http://127.0.0.1:9" in down.stderr
    assert "Traceback" not in down.stderr


def test_client_errors_carry_what_the_server_said(server: LiveServer, operator: Client
                                                  ) -> None:
    with pytest.raises(ApiError) as refused:
        operator.create_project("bad name!")
    assert refused.value.status == 422 and refused.value.correlation_id
    assert refused.value.validation_details[0]["field"] == "name"
    with pytest.raises(ServerUnreachable):
        Client("http://127.0.0.1:9", ADMIN_TOKEN, retries=1).get_project("x")


def test_client_logs_in_again_when_its_session_expires(tmp_path: Path) -> None:
    with serving(tmp_path / "data", 1, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN,
                 TASKDRIVER_SESSION_TTL="2") as live:
        operator = Client(live.url, ADMIN_TOKEN)
        project = operator.create_project("short")
        operator.create_task(project["id"], instructions="x")
        agent = Client(live.url, agent_name="a", project="short")
        first_session = agent.login()["sessionId"]
        time.sleep(3)
        task = agent.next_task()
        assert task is not None and agent.session_info is not None
        assert agent.session_info["sessionId"] != first_session


def test_client_retries_a_429_after_its_retry_after(tmp_path: Path) -> None:
    with serving(tmp_path / "data", 1, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN,
                 TASKDRIVER_RATE_LIMIT="3 per 2 seconds") as live:
        operator = Client(live.url, ADMIN_TOKEN)
        project = operator.create_project("limited")
        started = time.monotonic()
        for _ in range(4):  # the 4th is refused with 429 and retried after Retry-After
            operator.get_project(project["id"])
        assert time.monotonic() - started >= 0.5


def test_the_lease_keeper_extends_while_work_runs(server: LiveServer, operator: Client
                                                  ) -> None:
    project = operator.create_project("keeper", config={"defaultLeaseDurationMinutes": 0.05})
    operator.create_task(project["id"], instructions="x")
    agent = Client(server.url, agent_name="k", project="keeper")
    task = agent.next_task()
    assert task is not None
    with agent.keep_lease(task) as keeper:
        time.sleep(5)  # longer than the 3 s lease
    assert keeper.error is None
    done = agent.complete_task(task["id"], "kept")
    assert done["status"] == "completed" and len(done["attempts"]) == 1


def test_a_second_work_under_the_same_name_takes_over(server: LiveServer, operator: Client
                                                      ) -> None:
    operator.create_project("takeover")
    first = start(server, "work", "-p", "takeover", "-a", "same", "--", "cat")
    time.sleep(3)  # the first logs in and long-polls (for up to 30 s)
    second = start(server, "work", "-p", "takeover", "-a", "same", "--wait", "2", "--",
                   "cat")
    _, second_err = second.communicate(timeout=90)
    assert second.returncode == 0, second_err
    try:  # its next request, after its long poll, is refused: it stops by itself
        _, first_err = first.communicate(timeout=90)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate()
    assert first.returncode == 0, first_err
    assert "another process took over this agent name" in first_err
    assert "newer login for agent same ended this session" in first_err
