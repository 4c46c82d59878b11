"""The dashboard in a real headless Chromium (Debian's, driven by chromedriver): sign in,
watch a project's counts change, press Retry. With UPDATE_SCREENSHOTS=1 it also refreshes
docs/dashboard-*.png."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from taskdriver.client import Client

from conftest import ADMIN_TOKEN
from live_server import ROOT, serving

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("chromedriver") is None,
    reason="Debian's chromium and chromium-driver are not installed "
           "(scripts/install-test-deps installs them as root with apt-get)")]
DEADLINE_SECONDS = 60.0


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1100",
                 f"--user-data-dir={tmp_path / 'profile'}",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=Service(executable_path=shutil.which("chromedriver")))
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
        screenshot(driver, "overview", tmp_path)

        driver.find_element(By.LINK_TEXT, "nightly-audit").click()  # type: ignore[attr-defined]

        def count(name: str) -> str:
            return str(driver.find_element(By.ID, f"count-{name}").text)  # type: ignore[attr-defined]

        eventually(lambda: count("completed") == "3", "the project page")
        assert count("failed") == "1" and count("running") == "1"
        screenshot(driver, "project", tmp_path)

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
        screenshot(driver, "task", tmp_path)
        assert ADMIN_TOKEN not in driver.page_source  # type: ignore[attr-defined]
