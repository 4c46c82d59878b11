"""`taskdriver submit`: load tasks from JSON lines, 1,000 per request."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Any

import click
from tqdm import tqdm

from . import Connection

BULK_SIZE = 1000


def _items(source: IO[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, task body) for each non-blank line, or (line, why) when it is no
    JSON object."""
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not JSON: {exc.msg}"
            continue
        yield number, body if isinstance(body, dict) else "not a JSON object"


def _chunks(items: Iterator[tuple[int, dict[str, Any] | str]], size: int
            ) -> Iterator[list[tuple[int, dict[str, Any] | str]]]:
    chunk: list[tuple[int, dict[str, Any] | str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@click.command("submit")
@click.option("--project", "-p", required=True, help="Project id or name.")
@click.option("--type", "-t", "task_type", default=None,
              help="Task type id or name, for every line that names none.")
@click.option("--batch", "-b", default=None, help="batchId for every line that has none.")
@click.argument("source", type=click.File("r"), default="-")
@click.pass_obj
def command(connection: Connection, project: str, task_type: str | None, batch: str | None,
            source: IO[str]) -> None:
    """Create a task for each line of SOURCE (a JSON-lines file, or - for stdin): a task
    body as the API takes it, e.g. {"variables": {"file": "a.py"}} or {"instructions":
    "…"}, with optional batchId, description, priority, delaySeconds or runAfter, and
    dependsOn (task ids), dependsOnBatch and onDependencyFailure ("fail" or "run") to
    keep it waiting for other tasks. Sent in requests of 1,000, each safe to retry;
    prints what was created, duplicates skipped and the lines refused (exit 1 if any
    was)."""
    client = connection.operator()
    project_id = client.project_id(project)
    type_id = client.task_type_id(project_id, task_type) if task_type else None
    created = duplicates = 0
    refused: list[tuple[int, str]] = []
    total = None
    if source.seekable():  # a file: count its lines first, so the bar shows how far along
        total = sum(1 for line in source if line.strip())
        source.seek(0)
    with tqdm(total=total, unit=" tasks", disable=not sys.stderr.isatty(),
              file=sys.stderr) as progress:
        for chunk in _chunks(_items(source), BULK_SIZE):
            sendable = []
            for number, body in chunk:
                if isinstance(body, str):
                    refused.append((number, body))
                    continue
                if type_id and "typeId" not in body:
                    body["typeId"] = type_id
                sendable.append((number, body))
            if sendable:
                result = client.create_tasks_bulk(project_id, [b for _, b in sendable],
                                                  batch_id=batch)
                created += result["tasksCreated"]
                duplicates += result["duplicates"]
                refused += [(sendable[e["index"]][0], e["error"]) for e in result["errors"]]
            progress.update(len(chunk))
    for number, why in sorted(refused):
        click.echo(f"line {number}: {why}", err=True)
    click.echo(f"created {created}, duplicates skipped {duplicates}, errors {len(refused)}",
               err=True)
    if refused:
        sys.exit(1)
