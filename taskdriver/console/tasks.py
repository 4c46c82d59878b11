"""`taskdriver tasks` and `taskdriver retry`: find tasks, and send failed ones back."""

from __future__ import annotations

import json

import click

from ..client.types import Task
from . import Connection

DEFAULT_LIST_LIMIT = 50
INSTRUCTIONS_WIDTH = 48


def _first_line(text: str, width: int = INSTRUCTIONS_WIDTH) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[:width - 1] + "…"


def _table_row(task: Task, type_names: dict[str, str]) -> str:
    attempts = task["attempts"]
    agent = task["assignedTo"] or (attempts[-1]["agentName"] if attempts else "-")
    kind = type_names.get(task["typeId"] or "", "-")
    return (f"{task['id']}  {task['status']:<9} {kind:<16} {task['batchId'] or '-':<16} "
            f"{agent:<16} {task['retryCount']}/{task['maxRetries']:<3} "
            f"{task['updatedAt'][:19]}  {_first_line(task['instructions'])}")


@click.command("tasks")
@click.option("--project", "-p", required=True, help="Project id or name.")
@click.option("--status", "-s", default=None, help="Only tasks with this status.")
@click.option("--batch", "-b", default=None, help="Only this batchId.")
@click.option("--type", "-t", "task_type", default=None, help="Task type id or name.")
@click.option("--agent", "-a", default=None, help="Only tasks assigned to this agent.")
@click.option("--limit", "-n", type=click.IntRange(1, 1000), default=DEFAULT_LIST_LIMIT,
              show_default=True, help="How many, oldest first.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON task per line instead.")
@click.pass_obj
def list_command(connection: Connection, project: str, status: str | None,
                 batch: str | None, task_type: str | None, agent: str | None, limit: int,
                 offset: int, as_json: bool) -> None:
    """List a project's tasks with filters: id, status, type, batch, agent, retries used,
    last update and the first line of the instructions (or whole tasks with --json)."""
    client = connection.operator()
    project_id = client.project_id(project)
    type_id = client.task_type_id(project_id, task_type) if task_type else None
    page = client.list_tasks(project_id, status=status, batch_id=batch, type_id=type_id,
                             assigned_to=agent, limit=limit, offset=offset)
    if as_json:
        for task in page["items"]:
            click.echo(json.dumps(task, ensure_ascii=False))
    else:
        type_names = {t["id"]: t["name"] for t in client.iter_task_types(project_id)}
        click.echo(f"{'id':<36}  {'status':<9} {'type':<16} {'batch':<16} {'agent':<16} "
                   f"tries {'updated (UTC)':<20} instructions")
        for task in page["items"]:
            click.echo(_table_row(task, type_names))
    shown = len(page["items"])
    click.echo(f"{shown} of {page['total']} tasks" + (f" (from {offset + 1})" if offset
                                                      else ""), err=True)


@click.command("retry")
@click.argument("task_ids", nargs=-1)
@click.option("--project", "-p", default=None,
              help="Retry every failed task of this project (id or name) …")
@click.option("--batch", "-b", default=None, help="… of this batchId only.")
@click.option("--type", "-t", "task_type", default=None, help="… of this type only.")
@click.pass_obj
def retry_command(connection: Connection, task_ids: tuple[str, ...], project: str | None,
                  batch: str | None, task_type: str | None) -> None:
    """Send failed tasks back to the queue with a fresh retry budget: the TASK_IDS given,
    or every failed task of a project (of one batch, of one type). Needs an operator
    token."""
    if bool(task_ids) == bool(project):
        raise click.UsageError("give TASK_IDS, or --project (with --batch/--type), not both")
    if (batch or task_type) and not project:
        raise click.UsageError("--batch and --type go with --project")
    client = connection.operator()
    if project is not None:
        project_id = client.project_id(project)
        type_id = client.task_type_id(project_id, task_type) if task_type else None
        count = client.retry_failed(project_id, batch_id=batch, type_id=type_id)
        click.echo(f"requeued {count} failed tasks", err=True)
        return
    for task_id in task_ids:
        task = client.retry_task(task_id)
        click.echo(f"requeued {task['id']}", err=True)
