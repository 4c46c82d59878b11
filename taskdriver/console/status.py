"""`taskdriver status`: queue depth, working agents, the last hour, batches in progress."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from ..client import Client
from . import Connection


def _seconds_left(moment: str | None) -> float:
    if not moment:
        return 0.0
    then = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return (then - datetime.now(timezone.utc)).total_seconds()


def _report(client: Client, project_id: str) -> list[str]:
    stats = client.project_stats(project_id)
    counts = stats["project"]["stats"]
    recent = stats["recentActivity"]
    # A running task whose lease ran out is nobody's work in progress: it waits for the
    # next next-task or reap to take it back, so it is shown apart.
    stale = [task for task in client.iter_tasks(project_id, status="running")
             if _seconds_left(task["leaseExpiresAt"]) <= 0]
    stale_count = f", {len(stale)} stale" if stale else ""
    lines = [f"{stats['project']['name']} ({project_id})",
             f"  tasks: {counts['queuedTasks']} queued, "
             f"{counts['runningTasks'] - len(stale)} running{stale_count}, "
             f"{counts['completedTasks']} completed, {counts['failedTasks']} failed, "
             f"{counts.get('waitingTasks', 0)} waiting ({counts['totalTasks']} in all)",
             f"  last hour: {recent['tasksCompletedLastHour']} completed, "
             f"{recent['tasksFailedLastHour']} failed, average "
             f"{recent['averageTaskDuration']:.1f}s per task"]
    agents = client.active_agents(project_id)
    lines.append(f"  agents working: {len(agents)}")
    for lease in agents:
        left = _seconds_left(lease["leaseExpiresAt"])
        lines.append(f"    {lease['agentName']:<24} task {lease['taskId']}  lease "
                     f"{left:5.0f}s left")
    if stale:
        lines.append(f"  stale leases (expired, not yet reclaimed): {len(stale)}")
    for task in stale:
        ago = -_seconds_left(task["leaseExpiresAt"])
        lines.append(f"    {task['assignedTo'] or '':<24} task {task['id']}  lease expired "
                     f"{ago:.0f}s ago")
    batches = [batch for batch in client.iter_batches(project_id) if not batch["done"]]
    lines.append(f"  batches in progress: {len(batches)}")
    for batch in batches:
        lines.append(f"    {batch['batchId']:<24} {batch['completed']}/{batch['total']} "
                     f"completed, {batch['queued']} queued, {batch['running']} running, "
                     f"{batch['failed']} failed, {batch.get('waiting', 0)} waiting")
    return lines


@click.command("status")
@click.option("--project", "-p", default=None, help="Project id or name (default: all "
                                                    "active projects).")
@click.pass_obj
def command(connection: Connection, project: str | None) -> None:
    """Print each project's queue depth by status, agents at work with the time left on
    their leases, stale leases (expired, not yet reclaimed) apart from them, completions
    and failures in the last hour, and batches in progress."""
    client = connection.operator()
    if project is not None:
        project_ids = [client.project_id(project)]
    else:
        project_ids = [p["id"] for p in client.iter_projects("active")]
    if not project_ids:
        click.echo("no active projects")
    for number, project_id in enumerate(project_ids):
        if number:
            click.echo("")
        click.echo("\n".join(_report(client, project_id)))
