"""`flask --app taskdriver taskdriver …`: the operator's server-side commands (reaper, migrations,
tokens), run where the data is. The client-side `taskdriver` command is `console/`."""

from __future__ import annotations

import time

import click
from flask import Flask
from flask.cli import AppGroup

from .archiving import MAX_ARCHIVE_DAYS
from .config import Settings
from .errors import TaskDriverError
from .extension import services
from .inputs import ProjectSpec
from .models import OPERATOR
from .service.archive import ArchiveRun


class _Commands(AppGroup):
    """The command group; a refusal ends a command with one line and exit 1, no traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except TaskDriverError as exc:  # a refused input too: its FieldError
            raise click.ClickException(exc.message) from exc


group = _Commands("taskdriver", help="TaskDriver operator commands.")


@group.command("create-admin-token")
def create_admin_token() -> None:
    """Mint an operator token and print it once (only its hash is stored)."""
    click.echo(services().authenticator.mint_admin_token())


@group.command("create-project")
@click.argument("name")
@click.option("--description", default="", help="What the project is for.")
@click.option("--instructions", default="", help="Instructions every agent should follow.")
def create_project(name: str, description: str, instructions: str) -> None:
    """Create a project and print its id."""
    # Checked by the API's own input rules (`inputs.py`), so both refuse the same values.
    spec = ProjectSpec(name, description, instructions).checked()
    view = services().driver.create_project(OPERATOR, spec)
    click.echo(view.project.id)


@group.command("list-projects")
@click.option("--status", type=click.Choice(["active", "closed", "all"]), default="all")
def list_projects(status: str) -> None:
    """Print one line per project: id, name, status and task counts."""
    views, _ = services().driver.list_projects(OPERATOR, status, 10**9, 0)
    for view in views:
        counts = " ".join(f"{s.value}={n}" for s, n in view.counts.items())
        click.echo(f"{view.project.id}\t{view.project.name}\t"
                   f"{view.project.status.value}\t{counts}")


@group.command("migrate", with_appcontext=False)
@click.option("--dry-run", is_flag=True, help="Print the pending migrations' SQL instead.")
def migrate(dry_run: bool) -> None:
    """Apply pending PostgreSQL schema migrations (servers also do this when they start)."""
    url = Settings.from_env().resolved_storage_url
    if not url.startswith(("postgresql://", "postgres://")):
        click.echo("file storage has no schema to migrate")
        return
    from .storage.migrations import migrate_database  # psycopg only when it is used

    pending = migrate_database(url, dry_run)
    for migration in pending:
        if dry_run:
            click.echo(f"-- {migration.version:04d}_{migration.name}.sql\n{migration.sql}")
        else:
            click.echo(f"applied {migration.version:04d}_{migration.name}")
    if not pending:
        click.echo("the database schema is up to date")


@group.command("reap")
@click.option("--project", "projects", multiple=True,
              help="Only this project (by id or name); repeat for several.")
@click.option("--loop", is_flag=True, help="Keep reaping until interrupted.")
@click.option("--interval", default=60.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between rounds with --loop.")
def reap(projects: tuple[str, ...], loop: bool, interval: float) -> None:
    """Reclaim expired leases (every project by default), drop expired sessions and archive
    old finished tasks."""
    shared = services()
    project_ids = [shared.driver.resolve_project(OPERATOR, reference).id for reference in projects]
    while True:
        reclaimed = shared.driver.reap(list(project_ids) or None)
        purged = shared.authenticator.purge_expired()
        click.echo(f"reclaimedTasks={reclaimed.tasks} cleanedAgents={reclaimed.agents} "
                   f"expiredSessions={purged}")
        _print_runs(shared.driver.archive(list(project_ids) or None))
        if not loop:
            return
        time.sleep(interval)


@group.command("archive")
@click.option("--project", "projects", multiple=True,
              help="Only this project (by id or name); repeat for several.")
@click.option("--older-than", "older_than", type=click.FloatRange(0, MAX_ARCHIVE_DAYS),
              help="Days since finishing, instead of each project's archiveAfterDays "
                   "(0: every finished task).")
def archive(projects: tuple[str, ...], older_than: float | None) -> None:
    """Move old finished tasks to their project's archive (as `reap` also does), and delete
    archive segments past deleteArchivedAfterDays; prints what moved."""
    driver = services().driver
    project_ids = [driver.resolve_project(OPERATOR, reference).id for reference in projects]
    started = time.monotonic()
    runs = driver.archive(project_ids or None, older_than)
    _print_runs(runs)
    click.echo(f"seconds={time.monotonic() - started:.2f}")


def _print_runs(runs: list[ArchiveRun]) -> None:
    """One line per project that archived or deleted something, then the totals."""
    for run in runs:
        if run.archived or run.deleted_segments:
            click.echo(f"project={run.project.name} archivedTasks={run.archived} "
                       f"segments={run.segments} deletedSegments={run.deleted_segments} "
                       f"deletedTasks={run.deleted_tasks}")
    click.echo(f"archivedTasks={sum(run.archived for run in runs)} "
               f"deletedArchivedTasks={sum(run.deleted_tasks for run in runs)}")


def init_app(app: Flask) -> None:
    app.cli.add_command(group)
