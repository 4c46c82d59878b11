"""The dashboard's actions. One that changes many things (retry every failed task, reap
every expired lease) first shows a page that says how many it would change and asks to
confirm; every action then says what it did in a flash message on the page it redirects
to (POST, redirect, GET)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from ..answers import TaskFilter
from ..extension import services
from ..models import OPERATOR, TaskStatus
from .blueprint import blp, changes_state, signed_in
from .views import stale_leases


def counted(number: int, noun: str) -> str:
    """'1 task', '20 tasks'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


@blp.route("/tasks/<uuid:task_id>/retry", methods=["POST"])
@changes_state
def retry_task(task_id: Any) -> Any:
    """Send one failed task back to the queue."""
    retried = services().driver.retry_task(OPERATOR, str(task_id))
    flash(f"Task …{retried.id[-8:]} requeued.")
    back = request.form.get("next", "")
    if not back.startswith("/dashboard/") or back.startswith("//"):
        back = url_for("dashboard.task", task_id=retried.id)  # only ever back inside here
    return redirect(back)


@blp.route("/projects/<uuid:project_id>/retry-failed", methods=["GET"])
@signed_in
def confirm_retry_failed(project_id: Any) -> str:
    """Ask before sending every failed task (of the project or one batch) back."""
    batch = request.args.get("batch") or None
    _, failed = services().driver.list_tasks(
        OPERATOR, str(project_id), TaskFilter(status=TaskStatus.FAILED, batch_id=batch),
        limit=1, offset=0)
    where = f"batch “{batch}”" if batch else "this project"
    return render_template(
        "dashboard/confirm.html", project=services().driver.get_project(
            OPERATOR, str(project_id)).project, count=failed,
        question=f"Retry {counted(failed, 'failed task')} of {where}?",
        detail="Each goes back to the queue with a fresh retry budget.",
        action=url_for("dashboard.retry_failed", project_id=project_id),
        fields={"batch": batch} if batch else {}, button="Retry them")


@blp.route("/projects/<uuid:project_id>/retry-failed", methods=["POST"])
@changes_state
def retry_failed(project_id: Any) -> Any:
    """Send every failed task of the project (or of one batch) back to the queue."""
    batch = request.form.get("batch") or None
    retried = services().driver.retry_failed(OPERATOR, str(project_id), batch_id=batch)
    flash(f"{counted(retried, 'task')} requeued" + (f" from batch “{batch}”." if batch else "."))
    return redirect(url_for("dashboard.project", project_id=project_id))


@blp.route("/projects/<uuid:project_id>/reap", methods=["GET"])
@signed_in
def confirm_reap(project_id: Any) -> str:
    """Ask before reclaiming the project's expired leases."""
    stale = len(stale_leases(str(project_id)))
    return render_template(
        "dashboard/confirm.html", project=services().driver.get_project(
            OPERATOR, str(project_id)).project, count=stale,
        question=f"Reclaim {counted(stale, 'expired lease')}?",
        detail="Each task's attempt ends as timed out; it goes back to the queue while it "
               "has retries left, else it fails.",
        action=url_for("dashboard.reap", project_id=project_id), fields={},
        button="Reclaim them")


@blp.route("/projects/<uuid:project_id>/reap", methods=["POST"])
@changes_state
def reap(project_id: Any) -> Any:
    """Reclaim the project's expired leases now."""
    reaped = services().driver.reap_project(OPERATOR, str(project_id))
    flash(f"{counted(reaped.tasks, 'expired lease')} reclaimed "
          f"(from {counted(reaped.agents, 'agent')}).")
    return redirect(url_for("dashboard.project", project_id=project_id))
