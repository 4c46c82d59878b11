"""The dashboard's pages and actions.

Sign-in takes an operator token once and keeps only its hash in a signed, HttpOnly,
SameSite=Strict cookie; every page checks that hash is still an operator token's. Every form
that changes state carries the session's `csrf_token` (a few lines here rather than a form
library: there is one hidden field to check). Pages read with JavaScript off; htmx, when
present, refreshes the live parts every few seconds.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..api.errors import status_of
from ..errors import TaskDriverError
from ..extension import services
from ..models import OPERATOR, TaskFilter, TaskStatus
from ..times import rfc3339

blp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
                static_folder="static", static_url_path="/static")

SESSION_KEY = "operator"
CSRF_KEY = "csrf_token"
PAGE_SIZE = 50
CHART_HOURS = 6
CHART_BUCKET_MINUTES = 15
LATEST_FAILURES = 20

View = Callable[..., Any]


def signed_in(view: View) -> View:
    """Pages need a live operator session; anything else goes to the sign-in page."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token_hash = session.get(SESSION_KEY)
        if not token_hash or not services().authenticator.is_operator_token_hash(token_hash):
            session.clear()
            return redirect(url_for("dashboard.login"))
        return view(*args, **kwargs)
    return wrapper


def changes_state(view: View) -> View:
    """A POST must carry the session's CSRF token in a `csrf_token` field (else 400)."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sent = request.form.get(CSRF_KEY, "")
        expected = session.get(CSRF_KEY, "")
        if not expected or not hmac.compare_digest(sent, expected):
            abort(Response(render_template("dashboard/error.html", status=400,
                                           message="This form has expired or did not come "
                                                   "from the dashboard; go back, reload the "
                                                   "page and try again."), 400))
        return view(*args, **kwargs)
    return signed_in(wrapper)


@blp.app_template_global()
def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    return str(session[CSRF_KEY])


@blp.context_processor
def _names() -> dict[str, Any]:
    return {"Status": TaskStatus}


@blp.app_template_filter("when")
def when(moment: float | None) -> str:
    return rfc3339(moment) if moment is not None else "—"


@blp.app_template_filter("left")
def seconds_left(moment: float | None) -> str:
    if moment is None:
        return "—"
    left = moment - time.time()
    return "expired" if left <= 0 else f"{left:.0f} s"


@blp.errorhandler(TaskDriverError)
def domain_error(error: TaskDriverError) -> tuple[str, int]:
    status = status_of(error)
    return render_template("dashboard/error.html", status=status, message=error.message), status


# -- sign-in ----------------------------------------------------------------------------------

@blp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in form; an operator token starts a session."""
    if request.method == "GET":
        return render_template("dashboard/login.html", message=None)
    token = request.form.get("token", "").strip()
    token_hash = services().authenticator.operator_token_hash(token) if token else None
    if token_hash is None:
        message = ("That is not an operator token (agent tokens cannot sign in here)."
                   if token else "Paste an operator token.")
        return render_template("dashboard/login.html", message=message), 401
    session.clear()
    session[SESSION_KEY] = token_hash
    csrf_token()
    return redirect(url_for("dashboard.overview"))


@blp.route("/logout", methods=["POST"])
@changes_state
def logout() -> Any:
    session.clear()
    return redirect(url_for("dashboard.login"))


# -- pages ------------------------------------------------------------------------------------

def _overview() -> dict[str, Any]:
    driver = services().driver
    views, _ = driver.list_projects(OPERATOR, "all", limit=1000, offset=0)
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
    return render_template("dashboard/_overview_live.html", **_overview())


def _project(project_id: str) -> dict[str, Any]:
    driver = services().driver
    stats = driver.project_stats(OPERATOR, project_id)
    failures, failed_total = driver.list_tasks(OPERATOR, project_id,
                                               TaskFilter(status=TaskStatus.FAILED),
                                               limit=LATEST_FAILURES, offset=0)
    batches, _ = driver.list_batches(OPERATOR, project_id, limit=100, offset=0)
    task_types, _ = driver.list_task_types(OPERATOR, project_id, limit=100, offset=0)
    chart = driver.throughput(OPERATOR, project_id, CHART_HOURS, CHART_BUCKET_MINUTES)
    return {"stats": stats, "project": stats.view.project, "counts": stats.view.counts,
            "agents": driver.agents(OPERATOR, project_id), "failures": failures[::-1],
            "failed_total": failed_total, "batches": batches, "task_types": task_types,
            "chart": chart, "chart_hours": CHART_HOURS,
            "chart_peak": max([1, *chart.completed, *chart.failed])}


@blp.route("/projects/<uuid:project_id>")
@signed_in
def project(project_id: Any) -> str:
    """One project: counts, throughput, batches, types, agents, failures and actions."""
    return render_template("dashboard/project.html", **_project(str(project_id)))


@blp.route("/projects/<uuid:project_id>/live")
@signed_in
def project_live(project_id: Any) -> str:
    return render_template("dashboard/_project_live.html", **_project(str(project_id)))


@blp.route("/projects/<uuid:project_id>/tasks")
@signed_in
def tasks(project_id: Any) -> str:
    """The task list, filtered by status, type, batch and agent, a page at a time."""
    driver = services().driver
    args = request.args
    status = args.get("status") or None
    if status is not None and status not in {s.value for s in TaskStatus}:
        status = None
    page = max(1, args.get("page", 1, type=int) or 1)
    task_filter = TaskFilter(status=TaskStatus(status) if status else None,
                             type_id=args.get("type") or None,
                             batch_id=args.get("batch") or None,
                             assigned_to=args.get("agent") or None)
    found, total = driver.list_tasks(OPERATOR, str(project_id), task_filter,
                                     limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    current = driver.get_project(OPERATOR, str(project_id)).project
    task_types, _ = driver.list_task_types(OPERATOR, str(project_id), limit=100, offset=0)
    filters = {key: args.get(key, "") for key in ("status", "type", "batch", "agent")}

    def page_link(number: int) -> str:
        query = urlencode({**{k: v for k, v in filters.items() if v}, "page": number})
        return f"{url_for('dashboard.tasks', project_id=current.id)}?{query}"

    return render_template("dashboard/tasks.html", project=current, tasks=found, total=total,
                           page=page, pages=max(1, -(-total // PAGE_SIZE)),
                           filters=filters, statuses=[s.value for s in TaskStatus],
                           task_types=task_types, page_link=page_link)


@blp.route("/tasks/<uuid:task_id>")
@signed_in
def task(task_id: Any) -> str:
    """One task: instructions, variables, every attempt, result, outputs and error."""
    driver = services().driver
    found = driver.get_task(OPERATOR, str(task_id))
    current = driver.get_project(OPERATOR, found.project_id).project
    return render_template("dashboard/task.html", task=found, project=current)


# -- actions ----------------------------------------------------------------------------------

@blp.route("/tasks/<uuid:task_id>/retry", methods=["POST"])
@changes_state
def retry_task(task_id: Any) -> Any:
    """Send one failed task back to the queue."""
    retried = services().driver.retry_task(OPERATOR, str(task_id))
    back = request.form.get("next", "")
    if not back.startswith("/dashboard/") or back.startswith("//"):
        back = url_for("dashboard.task", task_id=retried.id)  # only ever back inside here
    return redirect(back)


@blp.route("/projects/<uuid:project_id>/retry-failed", methods=["POST"])
@changes_state
def retry_failed(project_id: Any) -> Any:
    """Send every failed task of the project (or of one batch) back to the queue."""
    services().driver.retry_failed(OPERATOR, str(project_id),
                                   batch_id=request.form.get("batch") or None)
    return redirect(url_for("dashboard.project", project_id=project_id))


@blp.route("/projects/<uuid:project_id>/reap", methods=["POST"])
@changes_state
def reap(project_id: Any) -> Any:
    """Reclaim the project's expired leases now."""
    services().driver.reap_project(OPERATOR, str(project_id))
    return redirect(url_for("dashboard.project", project_id=project_id))
