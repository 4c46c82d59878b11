"""`taskdriver new-project` and `taskdriver new-type`: set up a queue from the command line."""

from __future__ import annotations

import json
from typing import Any

import click

from . import Connection


@click.command("new-project")
@click.argument("name")
@click.option("--description", default="", help="What the project is for.")
@click.option("--instructions", default="", help="What every agent should know.")
@click.option("--lease-minutes", type=float, default=None,
              help="Default lease length of its tasks (minutes).")
@click.option("--max-retries", type=int, default=None,
              help="Default retries of its tasks.")
@click.pass_obj
def new_project(connection: Connection, name: str, description: str, instructions: str,
                lease_minutes: float | None, max_retries: int | None) -> None:
    """Create a project (an operator token is needed) and print it as JSON."""
    config = {key: value for key, value in (("defaultLeaseDurationMinutes", lease_minutes),
                                            ("defaultMaxRetries", max_retries))
              if value is not None}
    project = connection.operator().create_project(name, description, instructions,
                                                   config or None)
    click.echo(json.dumps(project, indent=2))


@click.command("new-type")
@click.option("--project", "-p", required=True, help="Project id or name.")
@click.argument("name")
@click.option("--template", default=None,
              help="Prompt template with {{variables}}; tasks then give the variables.")
@click.option("--duplicates", type=click.Choice(["allow", "ignore", "fail"]), default=None,
              help="What a task with the same variables as another does.")
@click.option("--lease-minutes", type=float, default=None)
@click.option("--max-retries", type=int, default=None)
@click.option("--max-concurrent", type=int, default=None,
              help="At most this many of its tasks running at once.")
@click.option("--rate-limit", default=None, metavar="COUNT/SECONDS",
              help="At most COUNT leases begin in any SECONDS seconds (say 50/60).")
@click.pass_obj
def new_type(connection: Connection, project: str, name: str, template: str | None,
             duplicates: str | None, lease_minutes: float | None,
             max_retries: int | None, max_concurrent: int | None,
             rate_limit: str | None) -> None:
    """Create a task type in a project and print it as JSON."""
    fields: dict[str, Any] = {key: value for key, value in (("template", template),
                                            ("duplicateHandling", duplicates),
                                            ("leaseDurationMinutes", lease_minutes),
                                            ("maxRetries", max_retries),
                                            ("maxConcurrent", max_concurrent),
                                            ("rateLimit", _rate_limit(rate_limit)))
                              if value is not None}
    task_type = connection.operator().create_task_type(project, name, **fields)
    click.echo(json.dumps(task_type, indent=2))


def _rate_limit(text: str | None) -> dict[str, int] | None:
    """`50/60` -> {"count": 50, "perSeconds": 60} (the server checks the ranges)."""
    if text is None:
        return None
    count, _, seconds = text.partition("/")
    try:
        return {"count": int(count), "perSeconds": int(seconds)}
    except ValueError:
        raise click.BadParameter("must be COUNT/SECONDS, say 50/60",
                                 param_hint="--rate-limit") from None
