"""The dashboard's fleet controls through Flask's test client, on both backends: each type's
running count against its limit, Pause/Resume for a project and a type, Cancel for a task
and a batch (confirmed, CSRF-protected, with a flash message), a running task's progress."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_dashboard import csrf_of

from conftest import ADMIN_TOKEN, ALL_BACKENDS, Api

BACKENDS = ALL_BACKENDS


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A client signed in to the dashboard (cookies kept between requests)."""
    client = app.test_client()
    assert client.post("/dashboard/login", data={"token": ADMIN_TOKEN}).status_code == 302
    return client


@pytest.fixture
def fleet(api: Api) -> dict[str, Any]:
    """A project with a limited type, a batch of three, one task running with progress."""
    project = api.project("fleet")
    kind = api.task_type(project["id"], "limited", maxConcurrent=3,
                         rateLimit={"count": 50, "perSeconds": 60})
    api.post(f"/api/projects/{project['id']}/tasks/bulk", {"batchId": "nightly", "tasks": [
        {"instructions": f"task {i}", "typeId": kind["id"]} for i in range(3)]})
    running = api.next_task("w", project["id"]).get_json()["data"]["task"]
    api.post(f"/api/tasks/{running['id']}/progress",
             {"agentName": "w", "progress": 42, "message": "reading the diff"})
    return {**project, "type": kind, "running": running}


def test_the_project_page_shows_limits_progress_and_the_controls(
        browser: FlaskClient, fleet: dict) -> None:
    page = browser.get(f"/dashboard/projects/{fleet['id']}").get_data(as_text=True)
    assert 'id="type-running-limited">1 / 3<' in page
    assert "50 per 60 s" in page
    assert "42%" in page and "reading the diff" in page
    assert "Pause project" in page and "Pause task type limited" in page
    assert "cancel-batch?batch=nightly" in page
    task_page = browser.get(f"/dashboard/tasks/{fleet['running']['id']}").get_data(as_text=True)
    assert 'id="task-progress"' in task_page and "reading the diff" in task_page
    assert 'id="cancel-task"' in task_page


def test_pause_and_resume_a_project_and_a_type(browser: FlaskClient, api: Api,
                                               fleet: dict) -> None:
    project_page = f"/dashboard/projects/{fleet['id']}"
    token = csrf_of(browser, project_page)
    refused = browser.post(f"{project_page}/pause", data={"csrf_token": "x", "paused": "1"})
    assert refused.status_code == 400
    assert api.get(f"/api/projects/{fleet['id']}").get_json()["data"]["paused"] is False
    done = browser.post(f"{project_page}/pause", data={"csrf_token": token, "paused": "1"},
                        follow_redirects=True).get_data(as_text=True)
    assert "Project fleet paused" in done and 'id="project-paused"' in done
    assert "Resume project" in done
    assert api.next_task("x", fleet["id"]).get_json()["data"]["task"] is None
    browser.post(f"{project_page}/pause", data={"csrf_token": token, "paused": "0"})
    type_path = f"/dashboard/task-types/{fleet['type']['id']}/pause"
    done = browser.post(type_path, data={"csrf_token": token, "paused": "1"},
                        follow_redirects=True).get_data(as_text=True)
    assert "Task type limited paused." in done and "Resume task type limited" in done
    assert api.next_task("x", fleet["id"]).get_json()["data"]["task"] is None
    browser.post(type_path, data={"csrf_token": token, "paused": "0"})
    assert api.next_task("x", fleet["id"]).get_json()["data"]["task"] is not None


def test_cancel_a_task_and_a_batch_after_confirming(browser: FlaskClient, api: Api,
                                                    fleet: dict) -> None:
    task_id = fleet["running"]["id"]
    confirm = browser.get(f"/dashboard/tasks/{task_id}/cancel").get_data(as_text=True)
    assert "Cancel running task" in confirm
    token = csrf_of(browser, f"/dashboard/tasks/{task_id}/cancel")
    assert browser.post(f"/dashboard/tasks/{task_id}/cancel",
                        data={"csrf_token": "forged"}).status_code == 400
    done = browser.post(f"/dashboard/tasks/{task_id}/cancel", data={"csrf_token": token},
                        follow_redirects=True).get_data(as_text=True)
    assert f"Task …{task_id[-8:]} cancelled." in done
    assert api.get(f"/api/tasks/{task_id}").get_json()["data"]["status"] == "cancelled"

    batch_page = f"/dashboard/projects/{fleet['id']}/cancel-batch"
    confirm = browser.get(f"{batch_page}?batch=nightly").get_data(as_text=True)
    assert "Cancel 2 unfinished tasks of batch “nightly”?" in confirm
    done = browser.post(batch_page, data={"csrf_token": token, "batch": "nightly"},
                        follow_redirects=True).get_data(as_text=True)
    assert "2 tasks cancelled from batch “nightly”." in done
    batch = api.get(f"/api/projects/{fleet['id']}/batches/nightly").get_json()["data"]
    assert (batch["cancelled"], batch["done"]) == (3, True)
    nothing = browser.post(batch_page, data={"csrf_token": token}, follow_redirects=True)
    assert "nothing was cancelled" in nothing.get_data(as_text=True)
