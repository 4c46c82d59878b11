"""The dashboard in a real headless Chromium (Debian's, driven by chromedriver): sign in,
watch a project's counts change, press Retry. With UPDATE_SCREENSHOTS=1 it also refreshes
docs/dashboard-*.png."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taskdriver.client import Client

from conftest import ADMIN_TOKEN
from live_server import ROOT, serving

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("chromedriver") is None,
    reason="Debian's chromium and chromium-driver are not installed "
           "(scripts/install-test-deps installs them as root with apt-get)")]
DEADLINE_SECONDS = 60.0


def start_chromium(tmp_path: Path, width: int, height: int = 1100) -> Any:
    """A headless Chromium whose page is `width` CSS pixels wide (quit it when done).

    Chromium will not make a window narrower than 500 px, so the page's size is set
    through the DevTools protocol's device emulation, as its own phone preview does."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 f"--window-size={width},{height}", f"--user-data-dir={tmp_path / 'profile'}",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=Service(executable_path=shutil.which("chromedriver")))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = start_chromium(tmp_path, 1280)
    try:
        yield driver
    finally:
        driver.quit()


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within the deadline"
        time.sleep(0.5)


def screenshot(driver: object, name: str, tmp_path: Path) -> None:
    target = ROOT / "docs" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
    path = target / f"dashboard-{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sign_in_watch_counts_change_and_retry(browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    with serving(tmp_path / "data", 2, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as server:
        operator = Client(server.url, ADMIN_TOKEN)
        project = operator.create_project("nightly-audit", "Security review of every repo",
                                          config={"defaultMaxRetries": 0})
        review = operator.create_task_type(project["id"], "review",
                                           template="Review {{repo}} for {{aspect}} issues")
        operator.create_tasks_bulk(project["id"], [
            {"typeId": review["id"], "variables": {"repo": f"repo-{i}", "aspect": "auth"}}
            for i in range(12)], batch_id="week-48")
        agent = Client(server.url, agent_name="claude-1", project="nightly-audit")
        for _ in range(3):
            task = agent.next_task()
            assert task is not None
            agent.complete_task(task["id"], "no findings", {"findings": 0})
        broken = agent.next_task()
        assert broken is not None
        agent.fail_task(broken["id"], "upstream API returned 529 overloaded", can_retry=False)
        working = Client(server.url, agent_name="claude-2", project="nightly-audit")
        in_flight = working.next_task()
        assert in_flight is not None

        driver.get(f"{server.url}/dashboard/")  # type: ignore[attr-defined]
        assert "/dashboard/login" in driver.current_url  # type: ignore[attr-defined]
        driver.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)  # type: ignore[attr-defined]
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[attr-defined]
        eventually(lambda: "nightly-audit" in driver.page_source, "the overview")  # type: ignore[attr-defined]

        driver.find_element(By.LINK_TEXT, "nightly-audit").click()  # type: ignore[attr-defined]

        def count(name: str) -> str:
            return str(driver.find_element(By.ID, f"count-{name}").text)  # type: ignore[attr-defined]

        eventually(lambda: count("completed") == "3", "the project page")
        assert count("failed") == "1" and count("running") == "1"

        working.complete_task(in_flight["id"], "2 findings", {"findings": 2})  # via the API
        eventually(lambda: count("completed") == "4", "the live refresh")
        assert count("running") == "0"

        driver.find_element(  # type: ignore[attr-defined]
            By.CSS_SELECTOR, f"button[aria-label='Retry task {broken['id']}']").click()
        eventually(lambda: operator.get_task(broken["id"])["status"] == "queued",
                   "the retry")
        eventually(lambda: count("failed") == "0", "the page after the retry")

        driver.get(f"{server.url}/dashboard/tasks/{broken['id']}")  # type: ignore[attr-defined]
        assert driver.find_element(By.ID, "task-status").text == "queued"  # type: ignore[attr-defined]
        driver.get(f"{server.url}/dashboard/tasks/{in_flight['id']}")  # type: ignore[attr-defined]
        assert ADMIN_TOKEN not in driver.page_source  # type: ignore[attr-defined]


FITS_SCRIPT = "return [document.documentElement.scrollWidth, window.innerWidth];"


def fits(driver: Any, page: str) -> None:
    """The page is no wider than the window: tables scroll inside their own boxes."""
    content, window = driver.execute_script(FITS_SCRIPT)
    assert content <= window, f"{page}: {content} px of content in a {window} px window"


@pytest.mark.parametrize("width", [1280, 400])
def test_what_operators_asked_for_at_laptop_and_phone_widths(tmp_path: Path, width: int
                                                             ) -> None:
    """Issue 25, items 10-14: first lines and relative times, confirm then say, search,
    sort, pages and a bad status, type, priority, settings and stale leases, and no page
    wider than the window, at 1280 and 400 px."""
    from selenium.webdriver.common.by import By

    suffix = "" if width == 1280 else "-narrow"
    driver = start_chromium(tmp_path, width, 1100 if width == 1280 else 860)
    try:
        with serving(tmp_path / "data", 2, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as server:
            operator = Client(server.url, ADMIN_TOKEN)
            project = operator.create_project(
                "nightly-audit", "Security review of every repo",
                instructions="Answer in one line. Cite the file and line.",
                config={"defaultMaxRetries": 0})
            review = operator.create_task_type(project["id"], "review",
                                               template="Review {{repo}} for {{aspect}} issues",
                                               maxConcurrent=3,  # issue 22's controls shown
                                               rateLimit={"count": 30, "perSeconds": 60})
            quick = operator.create_task_type(project["id"], "triage", template="Triage {{repo}}",
                                              leaseDurationMinutes=0.05)
            operator.create_tasks_bulk(project["id"], [
                {"typeId": review["id"], "variables": {"repo": f"repo-{i:02}", "aspect": "auth"}}
                for i in range(60)], batch_id="week-48")
            agent = Client(server.url, agent_name="claude-1", project="nightly-audit")
            for _ in range(3):
                task = agent.next_task()
                assert task is not None
                agent.complete_task(task["id"], "no findings", {"findings": 0})
            broken = agent.next_task()
            assert broken is not None
            agent.fail_task(broken["id"], "upstream API returned 529 overloaded",
                            can_retry=False)
            second = Client(server.url, agent_name="claude-2", project="nightly-audit")
            in_flight = second.next_task()
            assert in_flight is not None
            second.report_progress(in_flight["id"], 40, "reading src/auth/session.py")
            triage = operator.create_task(project["id"], type_id=quick["id"],
                                          variables={"repo": "repo-zanzibar"}, priority=5)
            sleepy = Client(server.url, agent_name="claude-3", project="nightly-audit")
            assert sleepy.next_task()["id"] == triage["id"]  # type: ignore[index]
            operator.pause_task_type(quick["id"])

            driver.get(f"{server.url}/dashboard/login")
            driver.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
            driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            eventually(lambda: "nightly-audit" in driver.page_source, "the overview")
            assert driver.execute_script("return window.innerWidth;") == width
            fits(driver, "overview")
            screenshot(driver, f"overview{suffix}", tmp_path)

            project_url = f"{server.url}/dashboard/projects/{project['id']}"
            driver.get(project_url)
            # 13: the project's instructions and defaults; the 3 s lease goes stale
            assert "Cite the file and line." in driver.find_element(By.ID, "settings").text
            assert "3 min" not in driver.find_element(By.ID, "project-defaults").text

            def stale_shown() -> bool:
                driver.get(project_url)
                return bool(driver.find_elements(By.ID, "count-stale"))

            eventually(stale_shown, "the stale lease")
            stale = driver.find_element(By.ID, "stale-leases")
            assert stale.text == "Stale leases (1)"
            working = driver.find_element(By.CSS_SELECTOR, "[aria-label='Agents working']").text
            assert "claude-2" in working and "claude-3" not in working
            # 10: first lines beside the ids, relative times with the exact time on hover
            failures = driver.find_element(By.CSS_SELECTOR, "[aria-label='Latest failures']")
            assert "Review repo-03 for auth issues" in failures.text
            moment = failures.find_element(By.TAG_NAME, "time")
            assert moment.text.endswith("ago") or moment.text == "just now"
            assert moment.get_attribute("title").endswith("Z")
            # 14: the chart keeps its size and its words stay readable
            chart = driver.find_element(By.CSS_SELECTOR, "figure.chart svg")
            assert chart.size["height"] >= 150 and chart.size["width"] >= 300
            axis = driver.find_element(By.CSS_SELECTOR, ".chart-axis")
            assert float(axis.value_of_css_property("font-size").removesuffix("px")) >= 12
            fits(driver, "project")
            driver.execute_script("document.getElementById('live').checked = false;")
            driver.execute_script("document.querySelector('figure.chart')"
                                  ".scrollIntoView({block: 'center'});")
            screenshot(driver, f"project{suffix}", tmp_path)
            types = driver.find_element(By.CSS_SELECTOR, "[aria-label='Task types']")
            assert "1 / 3" in types.text and "30 per 60 s" in types.text  # issue 22
            assert "paused" in types.text
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", types)
            screenshot(driver, f"controls{suffix}", tmp_path)

            # 11: Retry all failed asks, then says what it did
            driver.find_element(By.PARTIAL_LINK_TEXT, "Retry all failed").click()
            question = driver.find_element(By.ID, "question").text
            assert question == "Retry 1 failed task of this project?"
            assert operator.get_task(broken["id"])["status"] == "failed"
            fits(driver, "confirm")
            driver.find_element(By.ID, "confirm").click()
            eventually(lambda: bool(driver.find_elements(By.CSS_SELECTOR, ".flash")),
                       "the flash message")
            assert driver.find_element(By.CSS_SELECTOR, ".flash").text == "1 task requeued."
            assert operator.get_task(broken["id"])["status"] == "queued"
            fits(driver, "project after the retry")

            # 12: search, substring filters, sorting, numbered pages, a bad status
            tasks_url = f"{server.url}/dashboard/projects/{project['id']}/tasks"
            driver.get(tasks_url)
            assert driver.find_element(By.ID, "task-count").text == (
                "Tasks 1–50 of 61 · page 1 of 2")
            driver.find_element(By.CSS_SELECTOR, "nav.pages").find_element(
                By.LINK_TEXT, "2").click()
            eventually(lambda: "page=2" in driver.current_url, "page 2")
            assert "Tasks 51–61 of 61" in driver.find_element(By.ID, "task-count").text
            driver.get(tasks_url)
            driver.find_element(By.ID, "q").send_keys("ZANZIBAR")
            driver.find_element(By.ID, "agent").send_keys("claude")
            driver.find_element(By.CSS_SELECTOR, ".filters button").click()
            eventually(lambda: "zanzibar" in driver.current_url.lower(), "the search")
            rows = driver.find_elements(By.CSS_SELECTOR, "#task-list tbody tr")
            assert len(rows) == 1 and "Triage repo-zanzibar" in rows[0].text
            assert "stale lease" in rows[0].text
            driver.get(f"{tasks_url}?batch=WEEK")
            driver.find_element(By.LINK_TEXT, "Status").click()
            eventually(lambda: "sort=status" in driver.current_url, "the sort")
            driver.find_element(By.PARTIAL_LINK_TEXT, "Status").click()  # again: descending
            eventually(lambda: "order=desc" in driver.current_url, "the descending sort")
            first = driver.find_element(By.CSS_SELECTOR, "#task-list tbody tr").text
            assert "running" in first and "Tasks 1–50 of 60" in driver.find_element(
                By.ID, "task-count").text
            fits(driver, "tasks")
            screenshot(driver, f"tasks{suffix}", tmp_path)
            driver.get(f"{tasks_url}?status=bogus")
            alert = driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
            assert alert.startswith("Unknown status “bogus”")

            # 13: the task page names its type and priority
            driver.get(f"{server.url}/dashboard/tasks/{triage['id']}")
            assert driver.find_element(By.ID, "task-type").text == "triage"
            assert driver.find_element(By.ID, "task-priority").text == "5"
            assert driver.find_element(By.ID, "task-stale").text == "stale lease"
            fits(driver, "task")
            screenshot(driver, f"task{suffix}", tmp_path)
            assert ADMIN_TOKEN not in driver.page_source
    finally:
        driver.quit()
