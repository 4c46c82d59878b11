"""The dashboard's pages: overview, project, task list and task. Pages read with JavaScript
off; htmx, when present, refreshes the live parts every few seconds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import render_template, request, url_for
from werkzeug.datastructures import MultiDict

from .. import rules
from ..answers import TaskFilter, TaskOrder, TaskSort
from ..archiving import ArchivedTask
from ..errors import TaskDriverError
from ..extension import services
from ..models import OPERATOR, Task, TaskStatus
from .blueprint import blp, signed_in

PAGE_SIZE = 50
PAGE_LINKS_AROUND = 2
CHART_HOURS = 6
CHART_BUCKET_MINUTES = 15
LATEST_FAILURES = 20
MAX_LISTED = 1000  # task types, batches and running tasks a project page lists
QUERY_KEYS = ("q", "status", "type", "batch", "agent", "sort", "order", "archive")


def _overview() -> dict[str, Any]:
    driver = services().driver
    views, _ = driver.list_projects(OPERATOR, "all", limit=MAX_LISTED, offset=0)
    rows = [{"view": view, "stats": driver.project_stats(OPERATOR, view.project.id)}
            for view in views]
    try:
        driver.check_storage()
        healthy = True
    except TaskDriverError:
        healthy = False
    return {"rows": rows, "healthy": healthy, "provider": driver.storage_provider}


@blp.route("/")
@signed_in
def overview() -> str:
    """Every project: status, counts, progress, the last hour, agents; storage health."""
    return render_template("dashboard/overview.html", **_overview())


@blp.route("/live/overview")
@signed_in
def overview_live() -> str:
    """The overview's table, for the live refresh."""
    return render_template("dashboard/_overview_live.html", **_overview())


def _running(project_id: str) -> list[Task]:
    running, _ = services().driver.list_tasks(OPERATOR, project_id,
                                              TaskFilter(status=TaskStatus.RUNNING),
                                              limit=MAX_LISTED, offset=0)
    return running


def stale_leases(project_id: str, running: list[Task] | None = None) -> list[Task]:
    """Running tasks whose lease ran out and that no reaper has reclaimed yet."""
    now = services().driver.now()
    return [task for task in (_running(project_id) if running is None else running)
            if rules.lease_expired(task, now)]


def _project(project_id: str) -> dict[str, Any]:
    driver = services().driver
    stats = driver.project_stats(OPERATOR, project_id)
    failures, failed_total = driver.list_tasks(OPERATOR, project_id,
                                               TaskFilter(status=TaskStatus.FAILED),
                                               limit=LATEST_FAILURES, offset=0,
                                               order=TaskOrder(TaskSort.UPDATED, True))
    batches, _ = driver.list_batches(OPERATOR, project_id, limit=100, offset=0)
    task_types, _ = driver.list_task_types(OPERATOR, project_id, limit=100, offset=0)
    chart = driver.throughput(OPERATOR, project_id, CHART_HOURS, CHART_BUCKET_MINUTES)
    running = _running(project_id)
    return {"stats": stats, "project": stats.view.project, "counts": stats.view.counts,
            "agents": driver.agents(OPERATOR, project_id),
            "stale": stale_leases(project_id, running),
            "running_by_type": Counter(task.type_id for task in running if task.type_id),
            "failures": failures, "failed_total": failed_total, "batches": batches,
            "task_types": task_types, "chart": chart, "chart_hours": CHART_HOURS,
            "chart_peak": max([1, *chart.completed, *chart.failed])}


@blp.route("/projects/<uuid:project_id>")
@signed_in
def project(project_id: Any) -> str:
    """One project: settings, counts, throughput, batches, types, agents, stale leases,
    failures and actions."""
    return render_template("dashboard/project.html", **_project(str(project_id)))


@blp.route("/projects/<uuid:project_id>/live")
@signed_in
def project_live(project_id: Any) -> str:
    """The project page's changing part, for the live refresh."""
    return render_template("dashboard/_project_live.html", **_project(str(project_id)))


@dataclass
class TaskQuery:
    """The task list's query string, read: filters, order, page, and what was wrong in it."""

    task_filter: TaskFilter = field(default_factory=TaskFilter)
    order: TaskOrder = field(default_factory=TaskOrder)
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, args: MultiDict[str, str]) -> TaskQuery:
        """Read the arguments; an unknown status, sort or order is an error to show."""
        query = cls(page=max(1, args.get("page", 1, type=int) or 1))
        status = args.get("status") or None
        if status is not None and status not in TaskStatus._value2member_map_:
            query.errors.append(f"Unknown status “{status}”: choose one of "
                                f"{', '.join(s.value for s in TaskStatus)}.")
            status = None
        sort = args.get("sort") or TaskSort.CREATED.value
        if sort not in TaskSort._value2member_map_:
            query.errors.append(f"Cannot sort by “{sort}”: choose one of "
                                f"{', '.join(s.value for s in TaskSort)}.")
            sort = TaskSort.CREATED.value
        direction = args.get("order") or "asc"
        if direction not in ("asc", "desc"):
            query.errors.append(f"Unknown order “{direction}”: choose asc or desc.")
        query.order = TaskOrder(TaskSort(sort), direction == "desc")
        query.task_filter = TaskFilter(status=TaskStatus(status) if status else None,
                                       type_id=args.get("type") or None,
                                       batch_contains=args.get("batch") or None,
                                       agent_contains=args.get("agent") or None,
                                       text=args.get("q") or None)
        return query


def page_numbers(page: int, pages: int) -> list[int | None]:
    """The page links to show: the first, the last, and a few around `page` (None: a gap)."""
    shown = sorted({1, pages, *range(max(1, page - PAGE_LINKS_AROUND),
                                     min(pages, page + PAGE_LINKS_AROUND) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers


@blp.route("/projects/<uuid:project_id>/tasks")
@signed_in
def tasks(project_id: Any) -> tuple[str, int]:
    """The task list: search, filters (status, type, batch and agent by substring), sorting
    by the columns, numbered pages. A query it cannot read is shown on the page (422)."""
    driver = services().driver
    current = driver.get_project(OPERATOR, str(project_id)).project
    task_types, _ = driver.list_task_types(OPERATOR, current.id, limit=MAX_LISTED, offset=0)
    query = TaskQuery.parse(request.args)
    archived = request.args.get("archive") == "1"  # the project's archive (oldest first)
    found: list[Task] = []
    total = 0
    if not query.errors:
        found, total = driver.list_tasks(OPERATOR, current.id, query.task_filter,
                                         limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE,
                                         order=query.order, archived=archived)
    given = {key: request.args.get(key, "") for key in QUERY_KEYS}
    pages = max(1, -(-total // PAGE_SIZE))

    def link(**changes: Any) -> str:
        """This list's address with some arguments changed (empty ones left out)."""
        merged = {**given, "page": query.page, **changes}
        wanted = {key: value for key, value in merged.items() if value not in ("", None, 1)}
        return f"{url_for('dashboard.tasks', project_id=current.id)}?{urlencode(wanted)}"

    page = render_template(
        "dashboard/tasks.html", project=current, tasks=found, total=total, query=query,
        given=given, page=query.page, pages=pages, numbers=page_numbers(query.page, pages),
        first=(query.page - 1) * PAGE_SIZE + 1, statuses=[s.value for s in TaskStatus],
        task_types=task_types, type_names={t.id: t.name for t in task_types}, link=link,
        archived=archived,
        page_size=PAGE_SIZE)
    return page, 422 if query.errors else 200


@blp.route("/tasks/<uuid:task_id>")
@signed_in
def task(task_id: Any) -> str:
    """One task: type, priority, what it waits for and what waits for it (linked),
    instructions, variables, every attempt, result, outputs and error."""
    driver = services().driver
    detail = driver.task_detail(OPERATOR, str(task_id))
    found = detail.task
    current = driver.get_project(OPERATOR, found.project_id).project
    task_type = (driver.get_task_type(OPERATOR, found.type_id)
                 if found.type_id is not None else None)
    return render_template("dashboard/task.html", task=found, detail=detail,
                           project=current, task_type=task_type,
                           archived=isinstance(found, ArchivedTask))
