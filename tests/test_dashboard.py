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
                      ("failed", "failedTasks"), ("waiting", "waitingTasks")):
        assert f'id="count-{name}">{counts[key]}<' in page, name
    for part in ("Throughput", "<svg", "nightly", "review", "busy-agent", "model timed out",
                 "Retry all failed", "Reap expired leases", f"Retry task {busy_project['fail']}"):
        assert part in page, part


def test_tasks_page_filters_and_pages(browser: FlaskClient, busy_project: dict) -> None:
    base = f"/dashboard/projects/{busy_project['id']}/tasks"
    everything = browser.get(base).get_data(as_text=True)
    assert "Tasks 1–4 of 4" in everything and "page 1 of 1" in everything
    failed = browser.get(f"{base}?status=failed").get_data(as_text=True)
    assert "Tasks 1–1 of 1" in failed and busy_project["fail"] in failed
    assert "of 1 " in browser.get(f"{base}?agent=busy-agent").get_data(as_text=True)
    assert "Tasks 1–4 of 4" in browser.get(f"{base}?batch=nightly").get_data(as_text=True)
    assert "0 tasks" in browser.get(f"{base}?batch=other").get_data(as_text=True)


def test_task_page_shows_attempts_result_and_error(browser: FlaskClient, busy_project: dict
                                                   ) -> None:
    page = browser.get(f"/dashboard/tasks/{busy_project['fail']}").get_data(as_text=True)
    assert "model timed out" in page and "Attempts" in page and ">failed<" in page
    done = browser.get(f"/dashboard/tasks/{busy_project['complete']}").get_data(as_text=True)
    assert "ok" in done and "completed" in done
    # a finished task names who held it last, with no lease (it has none any more)
    assert '<th>Last held by</th><td id="task-holder">w</td>' in done and "lease" not in done
    running = browser.get(f"/dashboard/tasks/{busy_project['running']}").get_data(as_text=True)
    assert re.search(r'<th>Holder</th><td id="task-holder">busy-agent \(lease ends '
                     r'<time datetime="[^"]+Z" title="[^"]+Z">in (9|10) min</time>\)', running)
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


# -- what people asked of the faces (issue 25, items 10-14) ---------------------------------

TIME_TAG = re.compile(r'<time datetime="([^"]+Z)" title="\1">([^<]+)</time>')


def test_tables_show_each_tasks_first_line_and_relative_times(
        browser: FlaskClient, api: Api, clock: Any, busy_project: dict) -> None:
    api.task(busy_project["id"], instructions="Summarise the incident report\nsecond line")
    clock.advance(180)
    page = browser.get(f"/dashboard/projects/{busy_project['id']}").get_data(as_text=True)
    failure = page[page.index("Latest failures"):]
    assert f'title="{busy_project["fail"]}">…{busy_project["fail"][-8:]}</code>' in failure
    assert '<span class="gist">task 1</span>' in failure  # beside the id, in the failures
    working = page[page.index("Agents working"):page.index("Batches")]
    assert '<span class="gist">task 2</span>' in working
    times = TIME_TAG.findall(page)
    assert times and all(exact.endswith("Z") for exact, _ in times)
    assert ("3 min ago" in [words for _, words in times]), times  # failed 3 minutes ago
    listed = browser.get(f"/dashboard/projects/{busy_project['id']}/tasks").get_data(as_text=True)
    assert "Summarise the incident report<" in listed and "second line" not in listed
    long_line = "x" * 200
    api.task(busy_project["id"], instructions=long_line)
    listed = browser.get(f"/dashboard/projects/{busy_project['id']}/tasks").get_data(as_text=True)
    assert long_line not in listed and "x" * 59 + "…" in listed


def test_retry_all_failed_asks_first_then_says_what_it_did(
        browser: FlaskClient, api: Api, busy_project: dict) -> None:
    project_page = f"/dashboard/projects/{busy_project['id']}"
    ask = browser.get(f"{project_page}/retry-failed")
    text = ask.get_data(as_text=True)
    assert ask.status_code == 200 and "Retry 1 failed task of this project?" in text
    assert 'name="csrf_token"' in text
    stats = api.get(f"/api/projects/{busy_project['id']}").get_json()["data"]["stats"]
    assert stats["failedTasks"] == 1  # asking changed nothing
    token = csrf_of(browser, f"{project_page}/retry-failed")
    done = browser.post(f"{project_page}/retry-failed", data={"csrf_token": token},
                        follow_redirects=True)
    assert done.request.path == project_page
    assert '<p class="flash" role="status">1 task requeued.</p>' in done.get_data(as_text=True)
    again = browser.get(project_page).get_data(as_text=True)
    assert "requeued" not in again  # said once
    nothing = browser.get(f"{project_page}/retry-failed?batch=nightly").get_data(as_text=True)
    assert "Retry 0 failed tasks of batch “nightly”?" in nothing and "Nothing to do" in nothing
    reap = browser.post(f"{project_page}/reap", data={"csrf_token": token},
                        follow_redirects=True).get_data(as_text=True)
    assert "0 expired leases reclaimed (from 0 agents)." in reap
    single = browser.post(f"/dashboard/tasks/{busy_project['complete']}/retry",
                          data={"csrf_token": token}, follow_redirects=True)
    assert single.status_code == 409  # a completed task cannot be retried: said, not done


def test_task_list_search_substrings_sorting_pages_and_bad_status(
        browser: FlaskClient, api: Api, busy_project: dict) -> None:
    project_id = busy_project["id"]
    base = f"/dashboard/projects/{project_id}/tasks"
    api.post(f"/api/projects/{project_id}/tasks/bulk", {"batchId": "weekly-2024-48", "tasks": [
        {"instructions": f"Review repo-{i:03}", "priority": i % 3} for i in range(120)]})
    special = api.task(project_id, instructions="Translate the Zanzibar memo",
                       batchId="Weekly-special")
    page = browser.get(base).get_data(as_text=True)
    assert "Tasks 1–50 of 125" in page and "page 1 of 3" in page
    assert 'aria-current="page">1<' in page and "?page=3" in page
    assert "Tasks 101–125 of 125" in browser.get(f"{base}?page=3").get_data(as_text=True)
    assert "of 121 " in browser.get(f"{base}?batch=weekly").get_data(as_text=True)  # any case
    assert "of 4 " in browser.get(f"{base}?batch=nigh").get_data(as_text=True)  # a prefix
    assert "of 1 " in browser.get(f"{base}?agent=BUSY").get_data(as_text=True)
    found = browser.get(f"{base}?q=zanzibar").get_data(as_text=True)
    assert "Tasks 1–1 of 1" in found and special["id"] in found
    by_result = browser.get(f"{base}?q=ok&status=completed").get_data(as_text=True)
    assert "Tasks 1–1 of 1" in by_result and busy_project["complete"] in by_result
    assert "of 10 " in browser.get(f"{base}?q=REPO-11").get_data(as_text=True)  # 110-119
    bad = browser.get(f"{base}?status=bogus")
    assert bad.status_code == 422
    assert "Unknown status “bogus”: choose one of queued" in bad.get_data(as_text=True)
    assert browser.get(f"{base}?sort=colour").status_code == 422
    ordered = browser.get(f"{base}?sort=priority&order=desc").get_data(as_text=True)
    assert 'aria-sort="descending"' in ordered
    listed = re.findall(r'<td class="num">(\d+)</td>\s*<td>', ordered)  # the priority column
    assert listed and listed == sorted(listed, reverse=True) and listed[0] == "2"
    by_status = browser.get(f"{base}?sort=status").get_data(as_text=True)
    statuses = re.findall(r'<span class="(completed|failed|queued|running)">', by_status)
    assert statuses[:3] == ["completed", "failed", "queued"]


def test_task_and_project_pages_show_type_priority_settings_and_stale_leases(
        browser: FlaskClient, api: Api, clock: Any) -> None:
    project = api.project("settings", instructions="Answer in one line.",
                          config={"defaultLeaseDurationMinutes": 2, "defaultMaxRetries": 4})
    review = api.task_type(project["id"], "review", template="Review {{file}}")
    task = api.task(project["id"], typeId=review["id"], variables={"file": "a.py"},
                    priority=7)
    page = browser.get(f"/dashboard/tasks/{task['id']}").get_data(as_text=True)
    assert '<td id="task-type">review</td>' in page and '<td id="task-priority">7</td>' in page
    project_page = f"/dashboard/projects/{project['id']}"
    settings = browser.get(project_page).get_data(as_text=True)
    assert "Answer in one line." in settings
    assert "<th>Lease</th><td>2 min" in settings and "<th>Max retries</th><td>4" in settings
    api.next_task("sleepy", project["id"])
    clock.advance(3 * 60)  # the lease ran out a minute ago; no reaper has run
    stale = browser.get(project_page).get_data(as_text=True)
    assert 'id="count-stale">1<' in stale and "Stale leases (1)" in stale
    working = stale[stale.index("Agents working"):stale.index("Stale leases (1)")]
    assert "Agents working (0)" in working and "sleepy" not in working
    assert "1 min ago" in stale[stale.index("Stale leases (1)"):]
    held = browser.get(f"/dashboard/tasks/{task['id']}").get_data(as_text=True)
    assert 'id="task-stale">stale lease<' in held and "not yet reaped" in held
    listed = browser.get(f"{project_page}/tasks").get_data(as_text=True)
    assert '<span class="stale">stale lease</span>' in listed
    ask = browser.get(f"{project_page}/reap").get_data(as_text=True)
    assert "Reclaim 1 expired lease?" in ask
