"""Project tools: create, list, read, change, and watch a project."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ...client import Client
from .. import results
from ..registry import ADDS, OVERWRITES, READS, Arguments, Tools, spellings
from .common import Limit, Offset, OneProject, ProjectRef

tools = Tools()

MAX_RETRIES = "Default retries of the project's tasks after a failure."
LEASE_MINUTES = "Default lease length in minutes for the project's tasks."


def project_config(max_retries: int | None, lease_minutes: float | None
                   ) -> dict[str, Any] | None:
    """The project's `config` object from the tools' flat arguments (None when empty)."""
    config = {key: value for key, value in (("defaultMaxRetries", max_retries),
                                            ("defaultLeaseDurationMinutes", lease_minutes))
              if value is not None}
    return config or None


class CreateProject(Arguments):
    name: str = Field(description="Unique project name: letters, digits, '-', '_' and '.'.")
    description: str = Field("", description="What the project is for, for people.")
    instructions: str = Field("", description="Instructions every agent of the project "
                                              "follows, given with each leased task.")
    maxRetries: int | None = Field(None, description=MAX_RETRIES, ge=0,
                                   validation_alias=spellings("maxRetries",
                                                              "defaultMaxRetries"))
    leaseDurationMinutes: float | None = Field(
        None, description=LEASE_MINUTES, gt=0,
        validation_alias=spellings("leaseDurationMinutes", "defaultLeaseDurationMinutes"))


@tools.tool(CreateProject, results.Project, ADDS)
def create_project(client: Client, args: CreateProject) -> Any:
    """Create a project: a queue of tasks with its own task types (operators only)."""
    return client.create_project(args.name, args.description, args.instructions,
                                 project_config(args.maxRetries, args.leaseDurationMinutes))


class ListProjects(Arguments):
    status: Literal["active", "closed", "all"] = Field(
        "active", description="Which projects: active (default), closed, or all.")
    includeClosed: bool = Field(False, description="Same as status 'all' (the original's "
                                                   "spelling).")
    limit: Limit = 100
    offset: Offset = 0


@tools.tool(ListProjects, results.ProjectPage, READS)
def list_projects(client: Client, args: ListProjects) -> Any:
    """List projects with their task counts (an agent sees only its own)."""
    return client.list_projects("all" if args.includeClosed else args.status, args.limit,
                                args.offset)


@tools.tool(OneProject, results.Project, READS)
def get_project(client: Client, args: OneProject) -> Any:
    """A project (by id or name) with its configuration and task counts."""
    return client.get_project(args.projectId)


class UpdateProject(Arguments):
    projectId: ProjectRef
    name: str | None = Field(None, description="A new unique name.")
    description: str | None = Field(None, description="A new description.")
    instructions: str | None = Field(None, description="New instructions for every agent.")
    status: Literal["active", "closed"] | None = Field(
        None, description="closed stops new tasks and leases; active opens it again.")
    maxRetries: int | None = Field(None, description=MAX_RETRIES, ge=0,
                                   validation_alias=spellings("maxRetries",
                                                              "defaultMaxRetries"))
    leaseDurationMinutes: float | None = Field(
        None, description=LEASE_MINUTES, gt=0,
        validation_alias=spellings("leaseDurationMinutes", "defaultLeaseDurationMinutes"))
    paused: bool | None = Field(None, description="true: hand out none of its tasks (agents "
                                                  "keep and report what they hold); false: "
                                                  "resume at once.")


@tools.tool(UpdateProject, results.Project, OVERWRITES)
def update_project(client: Client, args: UpdateProject) -> Any:
    """Change a project's fields; closing it stops new tasks and leases, pausing stops
    leases until resumed (operators only)."""
    changes = {key: value for key, value in (
        ("name", args.name), ("description", args.description),
        ("instructions", args.instructions), ("status", args.status),
        ("config", project_config(args.maxRetries, args.leaseDurationMinutes)),
        ("paused", args.paused))
        if value is not None}
    return client.update_project(args.projectId, **changes)


@tools.tool(OneProject, results.ProjectStats, READS)
def get_project_stats(client: Client, args: OneProject) -> Any:
    """Queue depth, counts by status, working agents and the last hour's outcomes."""
    return client.project_stats(args.projectId)
