"""The operators' dashboard through Flask's test client: every page and action, sign-in,
CSRF, and no token anywhere in what it serves."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conftest import ADMIN_TOKEN, ALL_BACKENDS, Api

BACKENDS = ALL_BACKENDS
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A client signed in to the dashboard (cookies kept between requests)."""
    client = app.test_client()
    response = client.post("/dashboard/login", data={"token": ADMIN_TOKEN})
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard/")
    return client


def csrf_of(client: FlaskClient, page: str) -> str:
    match = CSRF.search(client.get(page).get_data(as_text=True))
    assert match, page
    return match.group(1)


@pytest.fixture
def busy_project(api: Api) -> dict[str, Any]:
    """A project with a type, a batch, one completed, one running and one failed task."""
    project = api.project("busy", config={"defaultMaxRetries": 0})
    api.task_type(project["id"], "review", template="Review {{file}}")
    api.post(f"/api/projects/{project['id']}/tasks/bulk", {"batchId": "nightly", "tasks": [
        {"instructions": f"task {i}"} for i in range(4)]})
    for outcome in ("complete", "fail"):
        task = api.next_task("w", project["id"]).get_json()["data"]["task"]
        body = {"agentName": "w", "result": "ok"} if outcome == "complete" else {
            "agentName": "w", "error": "model timed out", "canRetry": False}
        api.post(f"/api/tasks/{task['id']}/{outcome}", body)
        project[outcome] = task["id"]
    project["running"] = api.next_task("busy-agent", project["id"]).get_json()["data"]["task"]["id"]
    return project


def test_pages_without_a_session_go_to_the_sign_in_page(app: Flask, busy_project: dict
                                                        ) -> None:
    client = app.test_client()
    for page in ("/dashboard/", f"/dashboard/projects/{busy_project['id']}",
                 f"/dashboard/projects/{busy_project['id']}/tasks",
                 f"/dashboard/tasks/{busy_project['fail']}", "/dashboard/live/overview"):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response.headers["Location"].endswith("/dashboard/login")
    form = client.get("/dashboard/login").get_data(as_text=True)
    assert 'name="token"' in form and 'type="password"' in form


def test_agent_tokens_and_bad_tokens_are_refused(app: Flask, api: Api, busy_project: dict
                                                 ) -> None:
    agent_token = api.login("someone", busy_project["id"]).token
    for token in (agent_token, "not-a-token", ""):
        client = app.test_client()
        response = client.post("/dashboard/login", data={"token": token})
        assert response.status_code == 401
        assert 'name="token"' in response.get_data(as_text=True)
        assert client.get("/dashboard/").status_code == 302


def test_the_session_cookie_is_httponly_and_strict(app: Flask) -> None:
    response = app.test_client().post("/dashboard/login", data={"token": ADMIN_TOKEN})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    secure = app.test_client().post("/dashboard/login", data={"token": ADMIN_TOKEN},
                                    base_url="https://localhost")
    assert "Secure" in secure.headers["Set-Cookie"]


def test_overview_shows_every_project(browser: FlaskClient, busy_project: dict) -> None:
    page = browser.get("/dashboard/").get_data(as_text=True)
    assert "busy" in page and f"/dashboard/projects/{busy_project['id']}" in page
    assert "healthy" in page
    live = browser.get("/dashboard/live/overview")
    assert live.status_code == 200 and "busy" in live.get_data(as_text=True)


def test_project_page_has_the_api_numbers_and_every_part(browser: FlaskClient, api: Api,
                                                         busy_project: dict) -> None:
    stats = api.get(f"/api/projects/{busy_project['id']}/stats").get_json()["data"]
    counts = stats["project"]["stats"]
    page = browser.get(f"/dashboard/projects/{busy_project['id']}").get_data(as_text=True)
    for name, key in (("total", "totalTasks"), ("queued", "queuedTasks"),
                      ("running", "runningTasks"), ("completed", "completedTasks"),
                      ("failed", "failedTasks")):
        assert f'id="count-{name}">{counts[key]}<' in page, name
    for part in ("Throughput", "<svg", "nightly", "review", "busy-agent", "model timed out",
                 "Retry all failed", "Reap expired leases", f"Retry task {busy_project['fail']}"):
        assert part in page, part


def test_tasks_page_filters_and_pages(browser: FlaskClient, busy_project: dict) -> None:
    base = f"/dashboard/projects/{busy_project['id']}/tasks"
    everything = browser.get(base).get_data(as_text=True)
    assert "4 task(s)" in everything
    failed = browser.get(f"{base}?status=failed").get_data(as_text=True)
    assert "1 task(s)" in failed and busy_project["fail"] in failed
    assert "1 task(s)" in browser.get(f"{base}?agent=busy-agent").get_data(as_text=True)
    assert "4 task(s)" in browser.get(f"{base}?batch=nightly").get_data(as_text=True)
    assert "0 task(s)" in browser.get(f"{base}?batch=other").get_data(as_text=True)
    assert browser.get(f"{base}?page=2&status=bogus").status_code == 200


def test_task_page_shows_attempts_result_and_error(browser: FlaskClient, busy_project: dict
                                                   ) -> None:
    page = browser.get(f"/dashboard/tasks/{busy_project['fail']}").get_data(as_text=True)
    assert "model timed out" in page and "Attempts" in page and ">failed<" in page
    done = browser.get(f"/dashboard/tasks/{busy_project['complete']}").get_data(as_text=True)
    assert "ok" in done and "completed" in done
    # a finished task names who held it last, with no lease (it has none any more)
    assert '<th>Last held by</th><td id="task-holder">w</td>' in done and "lease" not in done
    running = browser.get(f"/dashboard/tasks/{busy_project['running']}").get_data(as_text=True)
    assert re.search(r'<th>Holder</th><td id="task-holder">busy-agent \(lease \d+ s\)', running)
    assert browser.get("/dashboard/tasks/00000000-0000-4000-8000-000000000000"
                       ).status_code == 404


def test_retry_buttons_and_reap_need_the_csrf_token(browser: FlaskClient, api: Api,
                                                    busy_project: dict) -> None:
    task_path = f"/api/tasks/{busy_project['fail']}"
    refused = browser.post(f"/dashboard/tasks/{busy_project['fail']}/retry", data={})
    assert refused.status_code == 400
    assert api.get(task_path).get_json()["data"]["status"] == "failed"  # nothing changed
    token = csrf_of(browser, f"/dashboard/projects/{busy_project['id']}")
    wrong = browser.post(f"/dashboard/tasks/{busy_project['fail']}/retry",
                         data={"csrf_token": token + "x"})
    assert wrong.status_code == 400
    done = browser.post(f"/dashboard/tasks/{busy_project['fail']}/retry",
                        data={"csrf_token": token, "next": "https://evil.example/"})
    assert done.status_code == 302 and done.headers["Location"].startswith("/dashboard/")
    assert api.get(task_path).get_json()["data"]["status"] == "queued"
    project_page = f"/dashboard/projects/{busy_project['id']}"
    for action in ("retry-failed", "reap"):
        assert browser.post(f"{project_page}/{action}", data={}).status_code == 400
        response = browser.post(f"{project_page}/{action}", data={"csrf_token": token})
        assert response.status_code == 302


def test_retry_all_failed_of_a_batch(browser: FlaskClient, api: Api, busy_project: dict
                                     ) -> None:
    token = csrf_of(browser, f"/dashboard/projects/{busy_project['id']}")
    browser.post(f"/dashboard/projects/{busy_project['id']}/retry-failed",
                 data={"csrf_token": token, "batch": "nightly"})
    stats = api.get(f"/api/projects/{busy_project['id']}").get_json()["data"]["stats"]
    assert stats["failedTasks"] == 0


def test_sign_out_needs_csrf_and_ends_the_session(browser: FlaskClient) -> None:
    assert browser.post("/dashboard/logout", data={}).status_code == 400
    assert browser.get("/dashboard/").status_code == 200
    token = csrf_of(browser, "/dashboard/")
    assert browser.post("/dashboard/logout", data={"csrf_token": token}).status_code == 302
    assert browser.get("/dashboard/").status_code == 302


def test_no_token_in_any_page(app: Flask, browser: FlaskClient, api: Api,
                              busy_project: dict) -> None:
    agent_token = api.login("leaky", busy_project["id"]).token
    pages = ["/dashboard/login", "/dashboard/", "/dashboard/live/overview",
             f"/dashboard/projects/{busy_project['id']}",
             f"/dashboard/projects/{busy_project['id']}/live",
             f"/dashboard/projects/{busy_project['id']}/tasks",
             f"/dashboard/tasks/{busy_project['fail']}"]
    for page in pages:
        response = browser.get(page)
        body = response.get_data(as_text=True)
        assert ADMIN_TOKEN not in body and agent_token not in body, page
        assert ADMIN_TOKEN not in response.headers.get("Set-Cookie", ""), page
        assert ADMIN_TOKEN not in (response.headers.get("Location") or "")


def test_the_dashboard_works_with_no_internet(browser: FlaskClient) -> None:
    page = browser.get("/dashboard/").get_data(as_text=True)
    assert "http://" not in page and "https://" not in page  # every asset is served here
    for asset in ("htmx.min.js", "dashboard.css"):
        response = browser.get(f"/dashboard/static/{asset}")
        assert response.status_code == 200
        response.close()
