"""Dependencies through the client side against a real server: `taskdriver.client`,
`taskdriver submit` lines with dependsOn / dependsOnBatch, `taskdriver work` handing a
task's dependencies to its command as TASKDRIVER_DEPENDENCIES, and MCP's create tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_mcp import session, stdio

from taskdriver.client import ApiError, Client

from conftest import ADMIN_TOKEN
from live_server import LiveServer, serving

pytestmark = pytest.mark.slow
TASKDRIVER = Path(sys.executable).parent / "taskdriver"
# Prints what it waited for: the results of its dependsOn tasks, its batch's counts.
SHOW = ('cat >/dev/null; printf "%s" "$TASKDRIVER_DEPENDENCIES" | python3 -c '
        '"import json,sys; d=json.load(sys.stdin); '
        'print(json.dumps({\'results\': sorted(t[\'result\'] for t in d[\'tasks\']), '
        '\'batch\': d[\'batch\']}))"')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("deps") / "data", 2,
                 TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as live:
        yield live


def run(server: LiveServer, *args: str, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKDRIVER_URL": server.url, "TASKDRIVER_TOKEN": ADMIN_TOKEN}
    return subprocess.run([str(TASKDRIVER), *args], input=input, capture_output=True,
                          text=True, env=env, timeout=300)


def test_submit_and_work_map_then_reduce(server: LiveServer) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("mapreduce")
    maps = "".join(json.dumps({"instructions": f"count {word}"}) + "\n"
                   for word in ("a", "b", "c"))
    assert run(server, "submit", "-p", "mapreduce", "--batch", "map", "-",
               input=maps).returncode == 0
    reduce_line = json.dumps({"instructions": "sum", "dependsOnBatch": "map"}) + "\n"
    assert run(server, "submit", "-p", "mapreduce", "-", input=reduce_line).returncode == 0
    [reduce_task] = operator.list_tasks(project["id"], status="waiting")["items"]
    assert reduce_task["dependsOnBatch"] == "map"

    done = run(server, "work", "-p", "mapreduce", "-a", "w", "--wait", "2", "--",
               "sh", "-c", 'read line; case "$line" in count*) echo "${line#count }";; '
               f'*) {SHOW};; esac')
    assert done.returncode == 0, done.stderr
    summed = operator.get_task(reduce_task["id"])
    assert summed["status"] == "completed"
    assert summed["outputs"] == {"results": [], "batch": {
        "batchId": "map", "total": 3, "completed": 3, "failed": 0, "cancelled": 0}}


def test_client_create_task_with_dependencies(server: LiveServer) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("clientdeps")
    first = operator.create_task(project["id"], instructions="first")
    second = operator.create_task(project["id"], instructions="second")
    join = operator.create_task(project["id"], instructions="join",
                                depends_on=[first["id"], second["id"]],
                                on_dependency_failure="run")
    assert join["status"] == "waiting" and join["onDependencyFailure"] == "run"
    assert operator.get_task(first["id"])["dependents"] == [join["id"]]
    with pytest.raises(ApiError) as refused:
        operator.create_task(project["id"], instructions="x", depends_on=["nope"])
    assert refused.value.status == 422
    assert refused.value.validation_details[0]["field"] == "dependsOn.0"

    done = run(server, "work", "-p", "clientdeps", "-a", "v", "--wait", "2", "--",
               "sh", "-c", f'read line; if [ "$line" = join ]; then {SHOW}; '
               'else echo "$line done"; fi')
    assert done.returncode == 0, done.stderr
    assert operator.get_task(join["id"])["outputs"] == {
        "results": ["first done", "second done"], "batch": None}


def test_mcp_creates_tasks_with_dependencies(server: LiveServer) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("mcpdeps")
    first = operator.create_task(project["id"], instructions="first", batch_id="m")
    one, bulk = session(stdio(server.url), [
        ("create_task", {"projectId": "mcpdeps", "instructions": "after",
                         "dependsOn": [first["id"]], "onDependencyFailure": "run"}),
        ("create_tasks_bulk", {"projectId": "mcpdeps", "tasks": [
            {"instructions": "reduce", "dependsOnBatch": "m"}]})])
    made = one.structured_content
    assert (made["status"], made["dependsOn"], made["onDependencyFailure"]) == (
        "waiting", [first["id"]], "run")
    [reduce_task] = bulk.structured_content["createdTasks"]
    assert (reduce_task["status"], reduce_task["dependsOnBatch"]) == ("waiting", "m")
