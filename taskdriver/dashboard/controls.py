"""The dashboard's fleet controls: pause and resume a project or a task type, cancel a task
or a batch's unfinished tasks. A cancel first asks to confirm (it cannot be undone); a pause
is one click either way. Each says what it did in a flash message (POST, redirect, GET)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from ..controls import UNFINISHED
from ..extension import services
from ..inputs import ProjectChanges, TaskTypeSpec
from ..models import OPERATOR
from .actions import counted
from .blueprint import blp, changes_state, signed_in


def _wants_pause() -> bool:
    return request.form.get("paused") == "1"


@blp.route("/projects/<uuid:project_id>/pause", methods=["POST"])
@changes_state
def pause_project(project_id: Any) -> Any:
    """Pause (paused=1) or resume (paused=0) handing out the project's tasks."""
    paused = _wants_pause()
    view = services().driver.update_project(OPERATOR, str(project_id),
                                            ProjectChanges(paused=paused))
    flash(f"Project {view.project.name} " + (
        "paused: no task is handed out until it is resumed." if paused else
        "resumed: its tasks are handed out again."))
    return redirect(url_for("dashboard.project", project_id=project_id))


@blp.route("/task-types/<uuid:type_id>/pause", methods=["POST"])
@changes_state
def pause_task_type(type_id: Any) -> Any:
    """Pause (paused=1) or resume (paused=0) handing out one task type's tasks."""
    paused = _wants_pause()
    task_type = services().driver.update_task_type(OPERATOR, str(type_id),
                                                   TaskTypeSpec(paused=paused), {"paused"})
    flash(f"Task type {task_type.name} {'paused' if paused else 'resumed'}.")
    return redirect(url_for("dashboard.project", project_id=task_type.project_id))


@blp.route("/tasks/<uuid:task_id>/cancel", methods=["GET"])
@signed_in
def confirm_cancel_task(task_id: Any) -> str:
    """Ask before cancelling one task."""
    driver = services().driver
    task = driver.get_task(OPERATOR, str(task_id))
    count = 1 if task.status in UNFINISHED else 0
    return render_template(
        "dashboard/confirm.html", project=driver.get_project(OPERATOR, task.project_id).project,
        count=count, question=f"Cancel {task.status.value} task …{task.id[-8:]}?",
        detail="It ends for good as cancelled; an agent working on it is told at its next "
               "report.", action=url_for("dashboard.cancel_task", task_id=task.id),
        fields={}, button="Cancel the task")


@blp.route("/tasks/<uuid:task_id>/cancel", methods=["POST"])
@changes_state
def cancel_task(task_id: Any) -> Any:
    """Cancel one queued or running task."""
    task = services().driver.cancel_task(OPERATOR, str(task_id), "Cancelled from the dashboard")
    flash(f"Task …{task.id[-8:]} cancelled.")
    return redirect(url_for("dashboard.task", task_id=task.id))


@blp.route("/projects/<uuid:project_id>/cancel-batch", methods=["GET"])
@signed_in
def confirm_cancel_batch(project_id: Any) -> str:
    """Ask before cancelling a batch's queued and running tasks."""
    driver = services().driver
    batch = request.args.get("batch", "")
    counts = driver.batch_progress(OPERATOR, str(project_id), batch).counts
    count = sum(counts[status] for status in UNFINISHED)
    return render_template(
        "dashboard/confirm.html", project=driver.get_project(OPERATOR, str(project_id)).project,
        count=count, question=f"Cancel {counted(count, 'unfinished task')} of batch “{batch}”?",
        detail="Queued and running tasks end for good as cancelled; finished ones stay.",
        action=url_for("dashboard.cancel_batch", project_id=project_id),
        fields={"batch": batch}, button="Cancel them")


@blp.route("/projects/<uuid:project_id>/cancel-batch", methods=["POST"])
@changes_state
def cancel_batch(project_id: Any) -> Any:
    """Cancel every unfinished task of one batch."""
    batch = request.form.get("batch", "")
    if not batch:  # never the whole project by a missing field
        flash("No batch was named: nothing was cancelled.")
        return redirect(url_for("dashboard.project", project_id=project_id))
    cancelled = services().driver.cancel_tasks(OPERATOR, str(project_id), batch, None, None)
    flash(f"{counted(cancelled, 'task')} cancelled from batch “{batch}”.")
    return redirect(url_for("dashboard.project", project_id=project_id))
