"""`taskdriver export`: every matching task, page by page, as JSON lines or CSV."""

from __future__ import annotations

import csv
import json
import sys
from typing import IO, Any

import click
from tqdm import tqdm

from ..client.types import Task
from . import Connection

COLUMNS = ("id", "status", "typeId", "typeName", "batchId", "description", "priority",
           "instructions", "variables", "result", "outputs", "error", "agent", "attempts",
           "retryCount", "maxRetries", "createdAt", "assignedAt", "completedAt", "updatedAt",
           "archived")
JSON_CELLS = {"variables", "result", "outputs"}


def _row(task: Task, type_names: dict[str, str]) -> dict[str, Any]:
    """The exported fields of a task: enough to join each result to what was asked.
    `agent` and `assignedAt` are the current lease's, else the last attempt's (a failed
    or requeued task keeps who tried it last, and when); `attempts` is how many."""
    attempts = task["attempts"]
    last = attempts[-1] if attempts else None
    fields: dict[str, Any] = dict(task)
    fields["agent"] = task["assignedTo"] or (last["agentName"] if last else None)
    fields["assignedAt"] = task["assignedAt"] or (last["startedAt"] if last else None)
    fields["typeName"] = type_names.get(task["typeId"] or "")
    fields["attempts"] = len(attempts)
    fields["archived"] = bool(task.get("archived"))
    return {column: fields.get(column) for column in COLUMNS}


def _csv_cell(column: str, value: Any) -> Any:
    if column in JSON_CELLS and value is not None and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


@click.command("export")
@click.option("--project", "-p", required=True, help="Project id or name.")
@click.option("--status", "-s", type=click.Choice(["queued", "running", "completed",
                                                   "failed", "waiting"]), default=None)
@click.option("--batch", "-b", default=None, help="Only this batchId.")
@click.option("--type", "-t", "task_type", default=None, help="Task type id or name.")
@click.option("--format", "-f", "output_format", type=click.Choice(["jsonl", "csv"]),
              default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.File("w"), default="-",
              help="Write here instead of stdout.")
@click.option("--archived", is_flag=True,
              help="Also the project's archived tasks, after the live ones.")
@click.pass_obj
def command(connection: Connection, project: str, status: str | None, batch: str | None,
            task_type: str | None, output_format: str, output: IO[str], archived: bool
            ) -> None:
    """Stream every matching task (id, status, type id and name, batch, description,
    priority, instructions, variables, result, outputs, error, agent, attempts, retries,
    times, archived) to stdout or a file, oldest first; CSV has one header row, with
    variables, result and outputs as JSON cells. With --archived, the archive's matching
    tasks follow the live ones."""
    client = connection.operator()
    project_id = client.project_id(project)
    type_id = client.task_type_id(project_id, task_type) if task_type else None
    type_names = {t["id"]: t["name"] for t in client.iter_task_types(project_id)}
    parts = (False, True) if archived else (False,)  # live, then the archive
    total = sum(client.list_tasks(project_id, status=status, batch_id=batch, type_id=type_id,
                                  limit=1, archived=part)["total"] for part in parts)
    writer = csv.DictWriter(output, fieldnames=COLUMNS) if output_format == "csv" else None
    if writer is not None:
        writer.writeheader()
    written = 0
    with tqdm(total=total, unit=" tasks", disable=not sys.stderr.isatty(),
              file=sys.stderr) as progress:
        tasks = (task for part in parts
                 for task in client.iter_tasks(project_id, status=status, batch_id=batch,
                                               type_id=type_id, archived=part))
        for task in tasks:
            row = _row(task, type_names)
            if writer is not None:
                writer.writerow({k: _csv_cell(k, v) for k, v in row.items()})
            else:
                output.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
            progress.update()
    output.flush()
    click.echo(f"exported {written} tasks", err=True)
