"""Benchmark rows for PostgreSQL: one project shared by every agent vs one project each.

On PostgreSQL the project is no longer a lock its agents queue on (issue 21): the same
agents on one project should cycle about as fast as when each has its own. Runs alternate
between the two layouts on one server, so the ratio compares figures taken side by side.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from live_server import LiveServer


def one_vs_spread(server: LiveServer, new_project: Callable[[str], dict[str, str]],
                  bulk_load: Callable[[LiveServer, str, int], float],
                  timed_cycles: Callable[..., dict[str, float]], agents: int, cycles: int,
                  repeat: int) -> dict[str, Any]:
    """Cycles/s of `agents` agents on one project and on `agents` projects (medians);
    `new_project` makes a project by name, `bulk_load` and `timed_cycles` are bench.py's."""
    one = new_project("spread-one")
    each = [new_project(f"spread-{i}") for i in range(agents)]
    per_agent = max(1, cycles // agents)
    rates: dict[str, list[float]] = {"one": [], "spread": []}
    for run in range(repeat):
        bulk_load(server, one["id"], per_agent * agents)
        for project in each:
            bulk_load(server, project["id"], per_agent)
        rates["one"].append(timed_cycles(server, one["name"], agents, cycles,
                                         run)["cycles_per_s"])
        rates["spread"].append(timed_cycles(server, [p["name"] for p in each], agents,
                                            cycles, 100 + run)["cycles_per_s"])
    figures: dict[str, Any] = {name: statistics.median(values)
                               for name, values in rates.items()}
    figures["agents"] = agents
    figures["ratio"] = figures["one"] / figures["spread"]
    print(f"{agents} agents on one project: {figures['one']:.0f} cycles/s; spread over "
          f"{agents} projects: {figures['spread']:.0f} cycles/s "
          f"({figures['ratio']:.2f}x)", flush=True)
    return figures
