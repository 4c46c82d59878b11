"""Fuzz: schemathesis generates requests from /api/openapi.json against a real server.

    python tests/fuzz.py [--examples 40]    (what `make fuzz` runs: thousands of cases)

Every operation is exercised with an operator token, with path ids pinned to a seeded
project, task type, task and batch so that generated bodies and queries reach the queue
logic instead of stopping at 404. The run fails on any 5xx or any response that breaks its
documented schema, status or content type. `tests/test_fuzz.py` runs a small one.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ADMIN_TOKEN  # noqa: E402
from live_server import BIN, LiveServer  # noqa: E402
from soak import operator  # noqa: E402

# Every check schemathesis has, negative_data_rejection included (it is what catches a
# 2.7 or " 4 " taken as an integer), but positive_data_acceptance: the schema cannot say
# what only a rule can (no NUL or lone surrogate in text, instructions required without a
# template, variables matching the type), so such "valid" bodies rightly get 422.
CHECKS = ("--checks", "all", "--exclude-checks", "positive_data_acceptance")
# For the short run inside `make test`: negative_data_rejection too. Now and then it sends a
# text of lone surrogates that happen to pair up; it counts each half as a character, JSON
# parsers count the pair as one, so a text at the length limit looks "too long but
# accepted". `make fuzz` keeps the check (and integer coercion is tested directly).
STABLE_CHECKS = ("--checks", "all", "--exclude-checks",
                 "positive_data_acceptance,negative_data_rejection")
# Deleting the pinned project would turn every later case into a 404: it runs last, alone.
PROJECT_DELETE = "DELETE /api/projects/{projectId}"


def seed(server: LiveServer) -> dict[str, str]:
    """Create one of everything a path can name; returns the path parameter values."""
    project = operator(server, "POST", "/api/projects", json={"name": "fuzz"})["data"]
    task_type = operator(server, "POST", f"/api/projects/{project['id']}/task-types",
                         json={"name": "t", "template": "Do {{x}}"})["data"]
    tasks = operator(server, "POST", f"/api/projects/{project['id']}/tasks/bulk", json={
        "batchId": "b1", "tasks": [{"typeId": task_type["id"], "variables": {"x": str(i)}}
                                   for i in range(50)]})["data"]["createdTasks"]
    operator(server, "POST", "/api/agents/fuzz-agent/next-task",
             json={"projectId": project["id"]})
    return {"projectId": project["id"], "typeId": task_type["id"],
            "taskId": tasks[0]["id"], "batchId": "b1", "agentName": "fuzz-agent"}


def run_fuzz(root: Path, examples: int, checks: tuple[str, ...] = CHECKS) -> tuple[int, str]:
    """Fuzz a fresh server; returns (generated cases, schemathesis output)."""
    # Long polls are capped at 1 s: generated waits of up to 30 s would only slow the run.
    server = LiveServer(root / "data", workers=2, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN,
                        TASKDRIVER_LONG_POLL_MAX_SECONDS="1").start()
    try:
        parameters = "\n".join(f'{name} = "{value}"' for name, value in seed(server).items())
        config = root / "schemathesis.toml"
        config.write_text(f'headers = {{ Authorization = "Bearer {ADMIN_TOKEN}" }}\n'
                          f"[parameters]\n{parameters}\n")
        generated, output = 0, ""
        for selection in ("--exclude-name", "--include-name"):
            result = subprocess.run(
                [str(BIN / "schemathesis"), "--config-file", str(config), "run",
                 f"{server.url}/api/openapi.json", *checks, selection,
                 PROJECT_DELETE, "--max-examples", str(examples), "--seed", "20261129",
                 "--no-color"], capture_output=True, text=True, timeout=1800)
            output += result.stdout + result.stderr
            assert result.returncode == 0, output[-4000:]
            generated += sum(int(n) for n in re.findall(r"(\d+) generated", result.stdout))
        assert "Traceback" not in server.log(), "the server logged an unhandled error"
    finally:
        server.stop()
    return generated, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=40,
                        help="hypothesis examples per operation and phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskdriver-fuzz-") as root:
        generated, output = run_fuzz(Path(root), args.examples)
    summary = [line for line in output.splitlines() if "generated" in line or "passed" in line]
    print("\n".join(summary[-3:]))
    print(f"fuzz passed: {generated} generated cases, 0 server errors, 0 schema violations")


if __name__ == "__main__":
    main()
