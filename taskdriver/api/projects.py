"""Projects: list, create, read, update, delete, and their statistics."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView

from ..inputs import ConfigChanges, ProjectChanges, ProjectSpec
from ..models import ProjectStatus
from .blueprint import Blueprint
from .context import driver, idempotency, ok, page, principal
from .envelope import envelope
from .operator_only import operator_only
from .requests import (
    IDEMPOTENCY_KEY_PARAMETER,
    ProjectCreateArgs,
    ProjectListArgs,
    ProjectUpdateArgs,
)
from .responses import DeletedSchema, ProjectSchema, ProjectStatsSchema, stats_of

blp = Blueprint("projects", __name__, url_prefix="/api/projects",
                description="Projects hold task types and a task queue")


@blp.route("")
class ProjectsView(MethodView):
    @blp.arguments(ProjectListArgs, location="query")
    @blp.response(200, envelope(ProjectSchema, many=True, paginated=True))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List projects (an agent sees only its own)."""
        views, total = driver().list_projects(principal(), args["status"], args["limit"],
                                              args["offset"])
        return page(views, total, args["limit"], args["offset"])

    @operator_only("create projects")
    @blp.arguments(ProjectCreateArgs)
    @blp.response(201, envelope(ProjectSchema))
    @blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Create a project (operators only)."""
        spec = ProjectSpec(args["name"], args["description"], args["instructions"],
                           ConfigChanges(**args["config"]))
        return ok(driver().create_project(principal(), spec, idempotency()))


@blp.route("/<uuid:project_id>")
class ProjectView(MethodView):
    @blp.response(200, envelope(ProjectSchema))
    def get(self, project_id: UUID) -> dict[str, Any]:
        """Read a project with its task counts."""
        return ok(driver().get_project(principal(), str(project_id)))

    @operator_only("update projects")
    @blp.arguments(ProjectUpdateArgs, required=False)
    @blp.response(200, envelope(ProjectSchema))
    def put(self, args: dict[str, Any], project_id: UUID) -> dict[str, Any]:
        """Change some fields of a project; `config` merges key by key (operators only)."""
        changes = ProjectChanges(
            name=args.get("name"), description=args.get("description"),
            instructions=args.get("instructions"),
            status=ProjectStatus(args["status"]) if "status" in args else None,
            config=ConfigChanges(**args["config"]) if "config" in args else None,
            paused=args.get("paused"))
        return ok(driver().update_project(principal(), str(project_id), changes))

    @operator_only("delete projects")
    @blp.response(200, envelope(DeletedSchema))
    def delete(self, project_id: UUID) -> dict[str, Any]:
        """Delete a project, its task types, tasks and agent sessions (operators only)."""
        driver().delete_project(principal(), str(project_id))
        return ok({"id": str(project_id), "deleted": True})


@blp.route("/<uuid:project_id>/stats")
@blp.response(200, envelope(ProjectStatsSchema))
def get_project_stats(project_id: UUID) -> dict[str, Any]:
    """Queue depth, working agents and the last hour's outcomes."""
    stats = driver().project_stats(principal(), str(project_id))
    recent = stats.recent
    project = stats.view.project
    return ok({
        "project": {"id": project.id, "name": project.name,
                    "stats": stats_of(stats.view.counts, stats.view.archived)},
        "queue_depth": stats.queue_depth,
        "delayed_tasks": stats.delayed_tasks,
        "active_agents": stats.active_agents,
        "recent_activity": {
            "tasks_completed_last_hour": recent.completed,
            "tasks_failed_last_hour": recent.failed,
            "average_task_duration": stats.average_task_duration,
        },
    })
