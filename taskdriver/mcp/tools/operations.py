"""Operations tools: the server's health, the state of leases, and reclaiming them."""

from __future__ import annotations

from typing import Any

from ...client import Client
from .. import results
from ..registry import READS, REPEATABLE, Arguments, Tools
from .common import OneProject

tools = Tools()


class NoArguments(Arguments):
    pass


@tools.tool(NoArguments, results.Health, READS)
def health_check(client: Client, args: NoArguments) -> Any:
    """Whether the TaskDriver server and its storage are healthy."""
    return client.health()


@tools.tool(OneProject, results.LeaseStats, READS)
def get_lease_stats(client: Client, args: OneProject) -> Any:
    """Running tasks, expired leases not yet reclaimed, and tasks by status."""
    project = client.project_stats(args.projectId)["project"]
    agents = client.active_agents(args.projectId)
    counts = project["stats"]
    running = counts["runningTasks"]
    return {"projectId": project["id"], "projectName": project["name"],
            "stats": {"totalRunningTasks": running, "expiredTasks": running - len(agents),
                      "tasksByStatus": {"queued": counts["queuedTasks"], "running": running,
                                        "completed": counts["completedTasks"],
                                        "failed": counts["failedTasks"]}}}


@tools.tool(OneProject, results.Reclaimed, REPEATABLE)
def cleanup_expired_leases(client: Client, args: OneProject) -> Any:
    """Reclaim the project's expired leases now, so their tasks can be leased again."""
    return client.cleanup_leases(args.projectId)
