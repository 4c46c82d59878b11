"""`taskdriver work` never burns a queue: its options, a command that cannot start, and
what a task given back looks like; against a real gunicorn, with the real command."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import requests

from taskdriver.client import Client
from taskdriver.client.types import Lease
from taskdriver.console.work import stdin_of

from conftest import ADMIN_TOKEN
from live_server import LiveServer, serving

pytestmark = pytest.mark.slow
TASKDRIVER = Path(sys.executable).parent / "taskdriver"
DEAD_URL = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("runner") / "data", 2,
                 TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as live:
        yield live


@pytest.fixture
def operator(server: LiveServer) -> Client:
    return Client(server.url, ADMIN_TOKEN)


def taskdriver(*args: str, url: str, input: str | None = None, timeout: float = 120
               ) -> subprocess.CompletedProcess[str]:
    """Run the real command with TASKDRIVER_URL set to `url` and the operator's token."""
    env = {**os.environ, "TASKDRIVER_URL": url, "TASKDRIVER_TOKEN": ADMIN_TOKEN}
    return subprocess.run([str(TASKDRIVER), *args], input=input, capture_output=True,
                          text=True, env=env, timeout=timeout)


def untouched(operator: Client, project_id: str) -> bool:
    """Every task of the project queued, never attempted, no retry spent."""
    return all(t["status"] == "queued" and not t["attempts"] and t["retryCount"] == 0
               for t in operator.iter_tasks(project_id))


def test_connection_options_work_before_and_after_the_subcommand(server: LiveServer,
                                                                 operator: Client) -> None:
    project = operator.create_project("options")
    operator.create_tasks_bulk(project["id"], [{"instructions": "x"}] * 2)
    after = taskdriver("work", "--url", server.url, "-p", "options", "-a", "a",
                       "--max-tasks", "1", "--", "cat", url=DEAD_URL)
    assert after.returncode == 0, after.stderr
    before = taskdriver("--url", server.url, "work", "-p", "options", "-a", "b",
                        "--max-tasks", "1", "--", "cat", url=DEAD_URL)
    assert before.returncode == 0, before.stderr
    assert all(t["status"] == "completed" for t in operator.iter_tasks(project["id"]))
    status = taskdriver("status", "-p", "options", "--url", server.url, "--token",
                        ADMIN_TOKEN, url=DEAD_URL)
    assert status.returncode == 0 and "2 completed" in status.stdout, status.stderr


def test_an_unknown_option_before_the_command_is_a_usage_error(server: LiveServer,
                                                               operator: Client) -> None:
    project = operator.create_project("typo")
    operator.create_tasks_bulk(project["id"], [{"instructions": "x"}] * 5)
    refused = taskdriver("work", "-p", "typo", "-a", "t", "--urll", server.url, "--",
                         "cat", url=server.url)
    assert refused.returncode == 2 and "No such option '--urll'" in refused.stderr
    assert untouched(operator, project["id"])


def test_a_command_that_cannot_start_leases_nothing(server: LiveServer,
                                                    operator: Client) -> None:
    project = operator.create_project("nosuch")
    operator.create_tasks_bulk(project["id"], [{"instructions": "x"}] * 200)
    for missing in ("/no/such/command", "no-such-command-anywhere"):
        refused = taskdriver("work", "-p", "nosuch", "-a", "n", "-c", "4", "--", missing,
                             url=server.url)
        assert refused.returncode == 1, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: cannot run {missing}"), lines
    assert untouched(operator, project["id"])


def test_a_command_that_stops_starting_mid_run_gives_its_task_back(
        server: LiveServer, operator: Client, tmp_path: Path) -> None:
    project = operator.create_project("vanishing")
    first = operator.create_task(project["id"], instructions="first")
    rest = [operator.create_task(project["id"], instructions=f"later {i}") for i in range(3)]
    script = tmp_path / "once"  # works once, then is gone: the next start fails
    script.write_text('#!/bin/sh\ncat >/dev/null\nrm "$0"\necho ok\n')
    script.chmod(0o755)
    done = taskdriver("work", "-p", "vanishing", "-a", "v", "--", str(script),
                      url=server.url)
    assert done.returncode == 1, done.stderr
    assert f"Error: cannot run {script}: No such file or directory" in done.stderr
    assert "1 completed, 0 failed, 0 lost, 1 given back" in done.stderr
    assert operator.get_task(first["id"])["result"] == "ok"
    for task in rest:  # the one given back and the ones never taken, all as they were
        now = operator.get_task(task["id"])
        assert now["status"] == "queued" and now["attempts"] == [] and now["retryCount"] == 0


def test_the_command_reads_the_projects_instructions_first(server: LiveServer,
                                                           operator: Client) -> None:
    project = operator.create_project("briefed", instructions="Answer in one line.")
    first = operator.create_task(project["id"], instructions="What is 2+2?")
    second = operator.create_task(project["id"], instructions="What is 3+3?")
    done = taskdriver("work", "-p", "briefed", "-a", "b", "--max-tasks", "1", "--", "cat",
                      url=server.url)
    assert done.returncode == 0, done.stderr
    assert operator.get_task(first["id"])["result"] == "Answer in one line.\n\nWhat is 2+2?"
    alone = taskdriver("work", "-p", "briefed", "-a", "b", "--max-tasks", "1",
                       "--no-project-instructions", "--", "cat", url=server.url)
    assert alone.returncode == 0, alone.stderr
    assert operator.get_task(second["id"])["result"] == "What is 3+3?"


def test_without_a_project_in_the_answer_the_task_is_sent_alone() -> None:
    """An older server's next-task answer has no `project`: the task's text goes alone."""
    task = {"instructions": "do it"}
    assert stdin_of(cast(Lease, {"task": task, "agentName": "a"}), True) == "do it"
    empty = {"id": "p", "name": "n", "instructions": ""}
    assert stdin_of(cast(Lease, {"task": task, "agentName": "a", "project": empty}),
                    True) == "do it"


def test_work_waits_out_the_rate_limit_with_one_line(tmp_path: Path) -> None:
    with serving(tmp_path / "data", 1, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN,
                 TASKDRIVER_RATE_LIMIT="8 per 5 seconds") as live:
        operator = Client(live.url, ADMIN_TOKEN, on_rate_limit=lambda seconds: None)
        project = operator.create_project("limited")
        operator.create_tasks_bulk(project["id"], [{"instructions": "x"}] * 6)
        refused = requests.get(f"{live.url}/api/projects", timeout=30)
        while refused.status_code != 429:
            refused = requests.get(f"{live.url}/api/projects", timeout=30)
        assert "TASKDRIVER_RATE_LIMIT" in refused.json()["error"]
        done = taskdriver("work", "-p", "limited", "-a", "l", "--max-tasks", "6", "--",
                          "cat", url=live.url)
        assert done.returncode == 0, done.stderr
        assert "6 completed" in done.stderr and "HTTP 429" not in done.stderr.replace(
            "(HTTP 429): waiting", "")
        waits = [line for line in done.stderr.splitlines() if "rate limited by" in line]
        assert waits and "TASKDRIVER_RATE_LIMIT" in waits[0], done.stderr
        tasks = list(operator.iter_tasks(project["id"]))
        assert all(t["status"] == "completed" for t in tasks)


def test_misleading_urls_and_a_dead_server_get_one_clear_line(server: LiveServer) -> None:
    no_scheme = taskdriver("status", url="127.0.0.1:3201")
    assert no_scheme.returncode == 2 and "needs http:// or https://" in no_scheme.stderr
    api_path = taskdriver("work", "--url", f"{server.url}/api", "-p", "x", "-a", "a", "--",
                          "cat", url=server.url)
    assert api_path.returncode == 2 and "give the server's root URL instead " \
        f"({server.url})" in api_path.stderr
    started = time.monotonic()
    dead = taskdriver("work", "-p", "x", "-a", "a", "-c", "4", "--", "cat", url=DEAD_URL)
    assert time.monotonic() - started < 30
    lines = dead.stderr.strip().splitlines()
    assert dead.returncode == 1 and len(lines) == 1, dead.stderr
    assert f"cannot reach the TaskDriver server at {DEAD_URL}" in lines[0]


def test_a_long_wait_is_capped_at_the_servers_ceiling(server: LiveServer,
                                                      operator: Client) -> None:
    project = operator.create_project("patient")
    task = operator.create_task(project["id"], instructions="x")
    agent = Client(server.url, agent_name="p", project="patient")
    leased = agent.next_task(wait_seconds=60)
    assert leased is not None and leased["id"] == task["id"]


def test_export_joins_back_to_its_inputs_in_both_formats(server: LiveServer,
                                                         operator: Client) -> None:
    project = operator.create_project("joinable", config={"defaultMaxRetries": 0})
    type_id = operator.create_task_type("joinable", "review",
                                        template="Review {{file}}")["id"]
    failed = operator.create_task(project["id"], type_id=type_id, variables={"file": "a.py"},
                                  batch_id="nightly", description="first")
    operator.create_task(project["id"], instructions="plain one")
    agent = Client(server.url, agent_name="x", project="joinable")
    assert agent.next_task() is not None
    agent.fail_task(failed["id"], "broken")
    jsonl = taskdriver("export", "-p", "joinable", url=server.url)
    as_csv = taskdriver("export", "-p", "joinable", "-f", "csv", url=server.url)
    assert jsonl.returncode == 0 and as_csv.returncode == 0, jsonl.stderr + as_csv.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    for first, plain in (rows, table):
        assert first["instructions"] == "Review a.py" and first["typeName"] == "review"
        assert first["batchId"] == "nightly" and first["description"] == "first"
        assert first["status"] == "failed" and first["agent"] == "x"
        assert first["assignedAt"]  # from the last attempt, the lease being over
        assert str(first["attempts"]) == "1" and first["error"] == "broken"
        assert plain["instructions"] == "plain one" and plain["typeName"] in (None, "")
    assert rows[0]["assignedAt"] == operator.get_task(failed["id"])["attempts"][0]["startedAt"]


def test_status_shows_a_stale_lease_as_such(server: LiveServer, operator: Client) -> None:
    project = operator.create_project("stale", config={"defaultLeaseDurationMinutes": 0.05})
    operator.create_task(project["id"], instructions="x")
    task = Client(server.url, agent_name="gone", project="stale").next_task()
    assert task is not None
    time.sleep(4)  # the 3 s lease runs out; nothing has reclaimed it yet
    shown = taskdriver("status", "-p", "stale", url=server.url)
    assert shown.returncode == 0, shown.stderr
    assert "tasks: 0 queued, 0 running, 1 stale, 0 completed" in shown.stdout, shown.stdout
    assert "agents working: 0" in shown.stdout
    assert "stale leases (expired, not yet reclaimed): 1" in shown.stdout
    assert "gone" in shown.stdout and f"task {task['id']}  lease expired" in shown.stdout


def test_tasks_lists_with_filters_and_retry_requeues(server: LiveServer,
                                                     operator: Client) -> None:
    project = operator.create_project("operated", config={"defaultMaxRetries": 0})
    operator.create_task_type("operated", "check", template="Check {{x}}")
    type_id = operator.task_type_id("operated", "check")
    failed = []
    for i in range(4):
        task = operator.create_task(project["id"], type_id=type_id, variables={"x": str(i)},
                                    batch_id="b1" if i < 3 else "b2")
        agent = Client(server.url, agent_name=f"w{i}", project="operated")
        assert agent.next_task() is not None
        failed.append(agent.fail_task(task["id"], "no"))
    operator.create_task(project["id"], instructions="still queued\nsecond line")
    listed = taskdriver("tasks", "-p", "operated", "-s", "failed", "-b", "b1", url=server.url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 4 and lines[0].startswith("id") and "3 of 3 tasks" in listed.stderr
    assert all("failed" in line and "check" in line and "Check " in line for line in lines[1:])
    queued = taskdriver("tasks", "-p", "operated", "-s", "queued", "--json", url=server.url)
    assert json.loads(queued.stdout)["instructions"] == "still queued\nsecond line"
    one = taskdriver("retry", failed[3]["id"], url=server.url)
    assert one.returncode == 0 and operator.get_task(failed[3]["id"])["status"] == "queued"
    batch = taskdriver("retry", "-p", "operated", "-b", "b1", "-t", "check", url=server.url)
    assert batch.returncode == 0 and "requeued 3 failed tasks" in batch.stderr
    assert {t["status"] for t in operator.iter_tasks(project["id"])} == {"queued"}
    again = taskdriver("retry", failed[0]["id"], url=server.url)
    assert again.returncode == 1 and "HTTP 409" in again.stderr  # queued, not failed
    both = taskdriver("retry", failed[0]["id"], "-p", "operated", url=server.url)
    assert both.returncode == 2 and "not both" in both.stderr
