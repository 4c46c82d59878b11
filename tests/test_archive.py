"""The archive (issue 24): finished tasks leave the live store after `archiveAfterDays`,
stay readable by id and by list, keep counting in stats and batches, and go whole segments
at a time after `deleteArchivedAfterDays`. Both backends, through the HTTP API and the
operator commands, with the app's clock moved instead of waiting days."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask

from taskdriver import archiving
from taskdriver.extension import services
from taskdriver.storage import journal

from conftest import ADMIN_TOKEN, ALL_BACKENDS, Api, Clock, close_app, make_app

BACKENDS = ALL_BACKENDS
DAY = 86400.0


def finish(api: Api, project_id: str, count: int, batch: str = "b1", fail_every: int = 0
           ) -> list[dict[str, Any]]:
    """Create `count` tasks in a batch and finish them (every `fail_every`-th one fails for
    good); returns them as finished."""
    created = api.post(f"/api/projects/{project_id}/tasks/bulk",
                       {"batchId": batch, "tasks": [{"instructions": f"job {i}"}
                                                    for i in range(count)]})
    assert created.status_code == 201, created.get_json()
    finished = []
    for number in range(count):
        lease = api.next_task("worker", project_id).get_json()["data"]["task"]
        if fail_every and number % fail_every == 0:
            response = api.post(f"/api/tasks/{lease['id']}/fail",
                                {"agentName": "worker", "error": "no", "canRetry": False})
        else:
            response = api.post(f"/api/tasks/{lease['id']}/complete",
                                {"agentName": "worker", "result": f"done {number}"})
        assert response.status_code == 200, response.get_json()
        finished.append(response.get_json()["data"])
    return finished


def archive(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["taskdriver", "archive", *args])
    assert result.exit_code == 0, result.output
    return result.output


def stats(api: Api, project_id: str) -> dict[str, Any]:
    return api.get(f"/api/projects/{project_id}/stats").get_json()["data"]["project"]["stats"]


def test_finished_tasks_move_after_the_age_and_not_before(app: Flask, api: Api, clock: Clock
                                                          ) -> None:
    project = api.project("demo", config={"archiveAfterDays": 2})
    assert project["config"]["archiveAfterDays"] == 2
    assert project["config"]["deleteArchivedAfterDays"] is None
    done = finish(api, project["id"], 5, fail_every=2)
    queued = api.task(project["id"], instructions="still to do")
    clock.advance(2 * DAY - 60)
    assert "archivedTasks=0" in archive(app)
    assert api.get(f"/api/tasks/{done[0]['id']}").get_json()["data"]["archived"] is False
    clock.advance(120)
    assert "project=demo archivedTasks=5 " in archive(app)
    for task in done:
        read = api.get(f"/api/tasks/{task['id']}").get_json()["data"]
        assert read["archived"] is True
        detail = {"archived", "dependencies", "dependencyBatch", "dependents"}  # a read's own
        assert {k: v for k, v in read.items() if k not in detail} == \
            {k: v for k, v in task.items() if k not in detail}
    live = api.get(f"/api/projects/{project['id']}/tasks").get_json()
    assert [t["id"] for t in live["data"]] == [queued["id"]]
    assert live["data"][0]["archived"] is False
    # A queued task never leaves, however old.
    clock.advance(100 * DAY)
    archive(app)
    assert api.get(f"/api/tasks/{queued['id']}").get_json()["data"]["archived"] is False


def test_reap_archives_in_its_round(app: Flask, api: Api, clock: Clock) -> None:
    project = api.project("demo")
    done = finish(api, project["id"], 3)
    clock.advance(archiving.SECONDS_PER_DAY * 7 + 1)  # the default archiveAfterDays
    result = app.test_cli_runner().invoke(args=["taskdriver", "reap"])
    assert result.exit_code == 0, result.output
    assert "archivedTasks=3" in result.output
    assert api.get(f"/api/tasks/{done[1]['id']}").get_json()["data"]["archived"] is True


def test_archived_list_pages_oldest_first_with_the_same_filters(
        app: Flask, api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archiving, "ARCHIVE_CHUNK", 4)  # several segments
    project = api.project("demo", config={"archiveAfterDays": 1})
    done = finish(api, project["id"], 10, fail_every=3)
    finish(api, project["id"], 3, batch="b2")
    clock.advance(DAY + 1)
    assert "archivedTasks=13 segments=4 " in archive(app)
    path = f"/api/projects/{project['id']}/tasks?archived=true"
    first = api.get(f"{path}&limit=5").get_json()
    assert first["pagination"]["total"] == 13
    assert [t["id"] for t in first["data"]] == [t["id"] for t in done[:5]]
    assert all(t["archived"] for t in first["data"])
    rest = api.get(f"{path}&limit=5&offset=5").get_json()["data"]
    assert [t["id"] for t in rest] == [t["id"] for t in done[5:10]]
    failed = api.get(f"{path}&status=failed").get_json()
    assert [t["id"] for t in failed["data"]] == [t["id"] for t in done[::3]]
    assert failed["pagination"]["total"] == 4
    in_b2 = api.get(f"{path}&batchId=b2&limit=2&offset=1").get_json()
    assert in_b2["pagination"]["total"] == 3 and len(in_b2["data"]) == 2
    assert api.get(f"/api/projects/{project['id']}/tasks").get_json()["data"] == []
    assert api.get(f"/api/projects/{project['id']}/tasks?archived=maybe").status_code == 422


def test_stats_and_batches_keep_counting_archived_tasks(app: Flask, api: Api, clock: Clock
                                                        ) -> None:
    project = api.project("demo", config={"archiveAfterDays": 1})
    finish(api, project["id"], 6, fail_every=3)
    api.task(project["id"], batchId="b1")
    before = stats(api, project["id"])
    batch_before = api.get(f"/api/projects/{project['id']}/batches/b1").get_json()["data"]
    assert before["archivedTasks"] == 0
    clock.advance(DAY + 1)
    archive(app)
    after = stats(api, project["id"])
    assert after == {**before, "archivedTasks": 6}
    assert after["totalTasks"] == 7 and after["failedTasks"] == 2
    listed = api.get(f"/api/projects/{project['id']}").get_json()["data"]["stats"]
    assert listed == after
    batch = api.get(f"/api/projects/{project['id']}/batches/b1").get_json()["data"]
    assert batch == batch_before and batch["total"] == 7 and batch["completed"] == 4
    batches = api.get(f"/api/projects/{project['id']}/batches").get_json()["data"]
    assert [b["batchId"] for b in batches] == ["b1"]


def test_archived_batch_alone_is_still_found(app: Flask, api: Api, clock: Clock) -> None:
    project = api.project("demo", config={"archiveAfterDays": 1})
    finish(api, project["id"], 2, batch="old")
    clock.advance(DAY + 1)
    archive(app, "--project", "demo")
    batch = api.get(f"/api/projects/{project['id']}/batches/old").get_json()["data"]
    assert batch["completed"] == 2 and batch["done"] is True


def test_duplicates_are_checked_among_live_tasks_only(app: Flask, api: Api, clock: Clock
                                                      ) -> None:
    project = api.project("demo", config={"archiveAfterDays": 1})
    task_type = api.task_type(project["id"], template="Check {{path}}", variables=["path"],
                              duplicateHandling="fail")
    body = {"typeId": task_type["id"], "variables": {"path": "a.py"}}
    first = api.post(f"/api/projects/{project['id']}/tasks", body).get_json()["data"]
    lease = api.next_task("worker", project["id"]).get_json()["data"]["task"]
    api.post(f"/api/tasks/{lease['id']}/complete", {"agentName": "worker"})
    assert api.post(f"/api/projects/{project['id']}/tasks", body).status_code == 409
    clock.advance(DAY + 1)
    archive(app)
    again = api.post(f"/api/projects/{project['id']}/tasks", body)
    assert again.status_code == 201 and again.get_json()["data"]["id"] != first["id"]


def test_segments_are_deleted_whole_after_retention(app: Flask, api: Api, clock: Clock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archiving, "ARCHIVE_CHUNK", 3)
    project = api.project("demo", config={"archiveAfterDays": 1})
    older = finish(api, project["id"], 5)
    clock.advance(DAY + 1)
    archive(app)  # two segments: 3 + 2
    newer = finish(api, project["id"], 2, batch="b2")
    clock.advance(DAY + 1)
    archive(app)  # a third segment, a day younger
    assert api.put(f"/api/projects/{project['id']}",
                   {"config": {"deleteArchivedAfterDays": 1.5}}).status_code == 200
    clock.advance(0.4 * DAY)
    assert "deletedArchivedTasks=0" in archive(app)  # 1.4 days: kept
    clock.advance(0.2 * DAY)  # the first two segments are 1.6 days old, the third 0.6
    output = archive(app)
    assert "deletedSegments=2 deletedTasks=5" in output
    for task in older:
        assert api.get(f"/api/tasks/{task['id']}").status_code == 404
    for task in newer:
        assert api.get(f"/api/tasks/{task['id']}").get_json()["data"]["archived"] is True
    assert stats(api, project["id"])["totalTasks"] == 2
    # null keeps the rest forever, and is told apart from leaving the setting out
    kept = api.put(f"/api/projects/{project['id']}", {"config": {"deleteArchivedAfterDays": None}})
    assert kept.get_json()["data"]["config"]["deleteArchivedAfterDays"] is None
    clock.advance(1000 * DAY)
    assert "deletedArchivedTasks=0" in archive(app)
    assert api.get(f"/api/tasks/{newer[0]['id']}").status_code == 200


@pytest.mark.parametrize("config", [{"archiveAfterDays": 0}, {"archiveAfterDays": 3651},
                                    {"archiveAfterDays": "7"}, {"deleteArchivedAfterDays": 0},
                                    {"archiveAfterDays": None}])
def test_archive_settings_out_of_range_are_refused(api: Api, config: dict[str, Any]) -> None:
    response = api.post("/api/projects", {"name": "demo", "config": config})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["success"] is False


def test_archive_command_refuses_an_unknown_project(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["taskdriver", "archive", "--project", "nope"])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_dashboard_opens_archived_tasks(app: Flask, api: Api, clock: Clock) -> None:
    project = api.project("demo", config={"archiveAfterDays": 1})
    done = finish(api, project["id"], 2)
    clock.advance(DAY + 1)
    archive(app)
    browser = app.test_client()
    assert browser.post("/dashboard/login", data={"token": ADMIN_TOKEN}).status_code == 302
    page = browser.get(f"/dashboard/tasks/{done[0]['id']}")
    assert page.status_code == 200
    assert 'id="task-archived"' in page.text and "done 0" in page.text
    listed = browser.get(f"/dashboard/projects/{project['id']}/tasks?archive=1")
    assert listed.status_code == 200 and done[1]["id"] in listed.text
    assert done[1]["id"] not in browser.get(f"/dashboard/projects/{project['id']}/tasks").text


def test_snapshots_carry_live_tasks_only(tmp_path: Path, clock: Clock,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's memory and cold start follow the live tasks: once archived, a task is in
    no snapshot a worker loads (file backend)."""
    monkeypatch.setattr(journal, "MIN_COMPACT_BYTES", 10_000)  # compact often
    app = make_app(tmp_path / "data", clock)
    try:
        api = Api(app.test_client())
        project = api.project("demo", config={"archiveAfterDays": 1})
        done = finish(api, project["id"], 40)
        clock.advance(DAY + 1)
        archive(app)
        live = [api.task(project["id"], instructions="x" * 500)["id"] for _ in range(40)]
        snapshot = tmp_path / "data" / "projects" / project["id"] / "snapshot.json"
        stored = [orjson.loads(line) for line in snapshot.read_bytes().splitlines()[1:]]
        kinds = Counter(kind for kind, _ in stored)
        assert kinds["archive_segment"] == 1
        assert {r["id"] for kind, r in stored if kind == "task"} <= set(live)
        assert not {r["id"] for kind, r in stored if kind == "task"} & {t["id"] for t in done}
    finally:
        close_app(app)
    restarted = make_app(tmp_path / "data", clock)  # a cold start reads live tasks only
    try:
        api = Api(restarted.test_client())
        assert api.get(f"/api/tasks/{done[0]['id']}").get_json()["data"]["archived"] is True
        with restarted.app_context():
            state = services().driver.storage.project_store(project["id"])._state
            assert state is not None and set(state.tasks) == set(live)
    finally:
        close_app(restarted)


def test_a_store_that_archived_most_of_its_tasks_starts_from_a_small_snapshot(
        tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cold start follows the live tasks right after an archiving, not only once the
    journal outgrows the last (big) snapshot: a store whose records mostly went is weighed
    against what a snapshot of it would take now, and compacts (file backend)."""
    monkeypatch.setattr(journal, "MIN_COMPACT_BYTES", 5_000)
    app = make_app(tmp_path / "data", clock)
    try:
        api = Api(app.test_client())
        project = api.project("demo", config={"archiveAfterDays": 1})
        for _ in range(3):  # big ones, so the snapshot dwarfs the archiving's journal line
            api.task(project["id"], instructions="x" * 4000)
        done = finish(api, project["id"], 200)
        store = tmp_path / "data" / "projects" / project["id"]
        big_snapshot = (store / "snapshot.json").stat().st_size
        clock.advance(DAY + 1)
        archive(app)
        snapshot = (store / "snapshot.json").read_bytes()
        assert len(snapshot) < big_snapshot / 10
        archived_ids = {task["id"] for task in done}
        assert not {r["id"] for kind, r in map(orjson.loads, snapshot.splitlines()[1:])
                    if kind == "task"} & archived_ids
        assert sum(p.stat().st_size for p in store.glob("journal.*.jsonl")) < 5_000
    finally:
        close_app(app)
