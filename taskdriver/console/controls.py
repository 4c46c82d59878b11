"""`taskdriver cancel`, `pause` and `resume`: an operator's fleet controls.

Limits (`maxConcurrent`, `rateLimit`) are fields of a task type: `taskdriver new-type`
takes them, or the API's `PUT /api/task-types/{id}`.
"""

from __future__ import annotations

import click

from ..client import Client
from . import Connection


@click.command("cancel")
@click.argument("task_ids", nargs=-1)
@click.option("--project", "-p", default=None,
              help="Cancel every unfinished task of this project (id or name) …")
@click.option("--batch", "-b", default=None, help="… of this batchId only.")
@click.option("--type", "-t", "task_type", default=None, help="… of this type only.")
@click.option("--status", "-s", type=click.Choice(["queued", "running"]), default=None,
              help="… queued or running ones only (default: both).")
@click.option("--reason", "-r", default=None, help="Why (kept in each task's error; "
                                                   "with TASK_IDS).")
@click.pass_obj
def cancel_command(connection: Connection, task_ids: tuple[str, ...], project: str | None,
                   batch: str | None, task_type: str | None, status: str | None,
                   reason: str | None) -> None:
    """End tasks for good (status `cancelled`): the TASK_IDS given, or every unfinished task
    of a project (of one batch, one type, one status) in one commit. A running task's agent
    learns it at its next report; `taskdriver work` stops the command. Needs an operator
    token."""
    if bool(task_ids) == bool(project):
        raise click.UsageError("give TASK_IDS, or --project (with --batch/--type/--status), "
                               "not both")
    if (batch or task_type or status) and not project:
        raise click.UsageError("--batch, --type and --status go with --project")
    client = connection.operator()
    if project is not None:
        project_id = client.project_id(project)
        type_id = client.task_type_id(project_id, task_type) if task_type else None
        count = client.cancel_tasks(project_id, batch_id=batch, type_id=type_id,
                                    status=status)
        click.echo(f"cancelled {count} tasks", err=True)
        return
    for task_id in task_ids:
        task = client.cancel_task(task_id, reason)
        click.echo(f"cancelled {task['id']}", err=True)


def _set_paused(connection: Connection, project: str, task_type: str | None,
                paused: bool) -> None:
    client: Client = connection.operator()
    project_id = client.project_id(project)
    verb = "paused" if paused else "resumed"
    if task_type is None:
        answer = client.pause_project(project_id, paused)
        click.echo(f"{verb} project {answer['name']}", err=True)
    else:
        kind = client.pause_task_type(client.task_type_id(project_id, task_type), paused)
        click.echo(f"{verb} task type {kind['name']} of {project}", err=True)


PROJECT_OPTION = click.option("--project", "-p", required=True, help="Project id or name.")
TYPE_OPTION = click.option("--type", "-t", "task_type", default=None,
                           help="Only this task type (id or name), not the whole project.")


@click.command("pause")
@PROJECT_OPTION
@TYPE_OPTION
@click.pass_obj
def pause_command(connection: Connection, project: str, task_type: str | None) -> None:
    """Stop handing out a project's tasks (or one type's): agents keep what they hold and
    can report on it; creates are still accepted. Needs an operator token."""
    _set_paused(connection, project, task_type, True)


@click.command("resume")
@PROJECT_OPTION
@TYPE_OPTION
@click.pass_obj
def resume_command(connection: Connection, project: str, task_type: str | None) -> None:
    """Hand out a paused project's (or type's) tasks again, at once."""
    _set_paused(connection, project, task_type, False)
