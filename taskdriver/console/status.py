"""`taskdriver status`: queue depth, working agents, the last hour, batches in progress."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from ..client import Client
from ..client.types import Task
from . import Connection


def _seconds_left(moment: str | None) -> float:
    if not moment:
        return 0.0
    then = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return (then - datetime.now(timezone.utc)).total_seconds()


def _controls(client: Client, project_id: str, running: list[Task]) -> list[str]:
    """One line per task type with a limit or a pause: its running count against its
    limit, its rate limit, and whether it is paused."""
    lines = []
    for kind in client.iter_task_types(project_id):
        limit, rate = kind.get("maxConcurrent"), kind.get("rateLimit")
        if limit is None and rate is None and not kind.get("paused"):
            continue
        count = sum(1 for task in running if task["typeId"] == kind["id"])
        parts = [f"{count}/{limit} running" if limit is not None else f"{count} running"]
        if rate is not None:
            parts.append(f"at most {rate['count']:g} leases per {rate['perSeconds']:g}s")
        if kind.get("paused"):
            parts.append("PAUSED")
        lines.append(f"    {kind['name']:<24} " + ", ".join(parts))
    return ["  task type controls:", *lines] if lines else []


def _progress(task: Task | None) -> str:
    """A running task's last reported progress, as `  40% message`."""
    if task is None or task.get("progress") is None:
        return ""
    message = task.get("progressMessage") or ""
    return f"  {task['progress']:.0f}% {message}".rstrip()


def _report(client: Client, project_id: str) -> list[str]:
    stats = client.project_stats(project_id)
    counts = stats["project"]["stats"]
    recent = stats["recentActivity"]
    running = list(client.iter_tasks(project_id, status="running"))
    # A running task whose lease ran out is nobody's work in progress: it waits for the
    # next next-task or reap to take it back, so it is shown apart.
    stale = [task for task in running if _seconds_left(task["leaseExpiresAt"]) <= 0]
    stale_count = f", {len(stale)} stale" if stale else ""
    paused = " PAUSED" if client.get_project(project_id).get("paused") else ""
    cancelled = counts.get("cancelledTasks", 0)
    lines = [f"{stats['project']['name']} ({project_id}){paused}",
             f"  tasks: {counts['queuedTasks']} queued, "
             f"{counts['runningTasks'] - len(stale)} running{stale_count}, "
             f"{counts['completedTasks']} completed, {counts['failedTasks']} failed"
             + (f", {cancelled} cancelled" if cancelled else "")
             + f", {counts.get('waitingTasks', 0)} waiting ({counts['totalTasks']} in all)",
             f"  last hour: {recent['tasksCompletedLastHour']} completed, "
             f"{recent['tasksFailedLastHour']} failed, average "
             f"{recent['averageTaskDuration']:.1f}s per task"]
    lines += _controls(client, project_id, running)
    agents = client.active_agents(project_id)
    by_id = {task["id"]: task for task in running}
    lines.append(f"  agents working: {len(agents)}")
    for lease in agents:
        left = _seconds_left(lease["leaseExpiresAt"])
        lines.append(f"    {lease['agentName']:<24} task {lease['taskId']}  lease "
                     f"{left:5.0f}s left{_progress(by_id.get(lease['taskId']))}")
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
                     f"{batch['failed']} failed"
                     + (f", {batch.get('cancelled')} cancelled" if batch.get("cancelled")
                        else "")
                     + f", {batch.get('waiting', 0)} waiting")
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
