"""Benchmark row for dependencies: a project holding many `waiting` tasks claims as fast as
one holding none (issue 23).

Waiting tasks are never leased and never looked at by a claim: they sit outside the queue
(file backend) and outside the claim's index (PostgreSQL). The waiting tasks here wait for
a batch whose one task is delayed by an hour, so none of them is released during the runs.
Runs alternate between the two projects on one server, so the ratio compares figures
taken side by side.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from live_server import LiveServer

BULK_SIZE = 1000


def waiting_vs_none(server: LiveServer, operator: Callable[..., Any],
                    new_project: Callable[[str], dict[str, str]],
                    bulk_load: Callable[[LiveServer, str, int], float],
                    timed_cycles: Callable[..., dict[str, float]], waiting: int,
                    agents: int, cycles: int, repeat: int,
                    loaded: Callable[[], None]) -> dict[str, Any]:
    """Cycles/s of `agents` agents on a project with `waiting` waiting tasks and on one
    with none (medians); the callables are bench.py's (`loaded`: told once the waiting
    tasks are in, so PostgreSQL's statistics count them)."""
    none = new_project("waiting-none")
    held = new_project("waiting-many")
    tasks = f"/api/projects/{held['id']}/tasks"
    operator(server, "POST", tasks, json={"instructions": "gate", "batchId": "gate",
                                          "delaySeconds": 3600})
    for start in range(0, waiting, BULK_SIZE):
        size = min(BULK_SIZE, waiting - start)
        body = {"tasks": [{"instructions": f"reduce {start + i}", "dependsOnBatch": "gate"}
                          for i in range(size)]}
        created = operator(server, "POST", f"{tasks}/bulk", json=body)["data"]
        assert created["tasksCreated"] == size, created["errors"][:3]
    loaded()
    rates: dict[str, list[float]] = {"none": [], "waiting": []}
    for run in range(repeat):
        for name, project in (("none", none), ("waiting", held)):
            bulk_load(server, project["id"], cycles)
            rates[name].append(timed_cycles(server, project["name"], agents, cycles,
                                            200 + run)["cycles_per_s"])
    stats = operator(server, "GET", f"/api/projects/{held['id']}/stats")["data"]
    assert stats["project"]["stats"]["waitingTasks"] == waiting  # none was released
    figures: dict[str, Any] = {name: statistics.median(values)
                               for name, values in rates.items()}
    figures.update(waiting_tasks=waiting, agents=agents,
                   ratio=figures["waiting"] / figures["none"])
    print(f"agent cycle, {agents} agents, beside {waiting:,} waiting tasks: "
          f"{figures['waiting']:.0f} cycles/s; beside none: {figures['none']:.0f} cycles/s "
          f"({figures['ratio']:.2f}x)", flush=True)
    return figures
