"""Dependencies (issue 23) through the HTTP surface, on both backends: a task that waits for
others (`dependsOn`, `dependsOnBatch`) is `waiting`, never leased, until its last one
finishes; then it is queued, or failed naming the dependency (cascading), or queued anyway
with `onDependencyFailure: "run"`. Peek, stats, batch status and the task list agree with
what next-task hands out."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from taskdriver.storage import journal

from conftest import ADMIN_TOKEN, Api, Clock, close_app, make_app

BACKENDS = ("file", "postgresql")


def _lease(api: Api, agent: str, project_id: str) -> dict[str, Any] | None:
    return api.next_task(agent, project_id).get_json()["data"]["task"]


def _complete(api: Api, task: dict[str, Any], agent: str, result: Any = "ok",
              outputs: Any = None) -> dict[str, Any]:
    response = api.post(f"/api/tasks/{task['id']}/complete",
                        {"agentName": agent, "result": result, "outputs": outputs})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def _fail(api: Api, task: dict[str, Any], agent: str) -> dict[str, Any]:
    response = api.post(f"/api/tasks/{task['id']}/fail",
                        {"agentName": agent, "error": "broke", "canRetry": False})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def _status(api: Api, task: dict[str, Any]) -> str:
    return str(api.get(f"/api/tasks/{task['id']}").get_json()["data"]["status"])


def _figures(api: Api, project_id: str, batch: str | None = None) -> dict[str, Any]:
    """What peek, stats and (for a batch) batch status say."""
    base = f"/api/projects/{project_id}"
    stats = api.get(f"{base}/stats").get_json()["data"]
    figures = {"available": api.get(f"{base}/peek-next-task").get_json()["data"][
        "tasksAvailable"], "waiting": stats["project"]["stats"]["waitingTasks"],
        "queued": stats["project"]["stats"]["queuedTasks"]}
    listed = api.get(f"{base}/tasks?status=waiting").get_json()
    figures["listed_waiting"] = listed["pagination"]["total"] if "pagination" in listed \
        else len(listed["data"])
    if batch is not None:
        progress = api.get(f"{base}/batches/{batch}").get_json()["data"]
        figures["batch"] = (progress["waiting"], progress["done"])
    return figures


def test_waits_for_two_then_leased_with_their_results(api: Api, project: dict) -> None:
    pid = project["id"]
    first, second = api.task(pid, instructions="a"), api.task(pid, instructions="b")
    join = api.task(pid, instructions="join", dependsOn=[first["id"], second["id"]])
    assert join["status"] == "waiting" and join["dependsOn"] == [first["id"], second["id"]]
    assert join["onDependencyFailure"] == "fail" and join["dependsOnBatch"] is None
    assert _figures(api, pid) == {"available": 2, "waiting": 1, "queued": 2,
                                  "listed_waiting": 1}

    a = _lease(api, "w1", pid)
    b = _lease(api, "w2", pid)
    assert {a["id"], b["id"]} == {first["id"], second["id"]}  # the waiting one never
    assert _lease(api, "w3", pid) is None
    _complete(api, a, "w1", result={"n": 1}, outputs=["x"])
    assert _status(api, join) == "waiting" and _lease(api, "w3", pid) is None
    assert _figures(api, pid)["available"] == 0
    _complete(api, b, "w2", result={"n": 2})
    assert _figures(api, pid) == {"available": 1, "waiting": 0, "queued": 1,
                                  "listed_waiting": 0}

    leased = _lease(api, "w3", pid)
    assert leased is not None and leased["id"] == join["id"]
    by_id = {dep["id"]: dep for dep in leased["dependencies"]}
    assert by_id[first["id"]] == {"id": first["id"], "status": "completed",
                                  "result": {"n": 1} if a["id"] == first["id"] else {"n": 2},
                                  "outputs": ["x"] if a["id"] == first["id"] else None}
    assert by_id[second["id"]]["status"] == "completed" and leased["dependencyBatch"] is None
    read = api.get(f"/api/tasks/{first['id']}").get_json()["data"]
    assert read["dependents"] == [join["id"]]  # what waits for it


def test_a_failed_dependency_fails_the_dependent_and_its_dependents(api: Api,
                                                                     project: dict) -> None:
    pid = project["id"]
    root = api.task(pid, instructions="root")
    child = api.task(pid, instructions="child", dependsOn=[root["id"]])
    grandchild = api.task(pid, instructions="grandchild", dependsOn=[child["id"]])
    runs_anyway = api.task(pid, instructions="cleanup", dependsOn=[root["id"]],
                           onDependencyFailure="run")
    _fail(api, _lease(api, "w1", pid), "w1")

    read = api.get(f"/api/tasks/{child['id']}").get_json()["data"]
    assert read["status"] == "failed" and root["id"] in read["error"]
    read = api.get(f"/api/tasks/{grandchild['id']}").get_json()["data"]
    assert read["status"] == "failed" and child["id"] in read["error"]
    assert _status(api, runs_anyway) == "queued"
    leased = _lease(api, "w2", pid)
    assert leased["id"] == runs_anyway["id"]
    assert leased["dependencies"][0]["status"] == "failed"

    # Retrying the dependency first, then the dependent: it waits again, then runs.
    assert api.post(f"/api/tasks/{grandchild['id']}/retry").status_code == 409  # child failed
    assert api.post(f"/api/tasks/{root['id']}/retry").status_code == 200
    retried = api.post(f"/api/projects/{pid}/tasks/retry").get_json()["data"]["retried"]
    assert retried == 2
    assert _status(api, child) == "waiting" and _status(api, grandchild) == "waiting"
    _complete(api, _lease(api, "w3", pid), "w3")
    assert _status(api, child) == "queued" and _status(api, grandchild) == "waiting"


def test_depends_on_batch_releases_once_the_batch_finished(api: Api, project: dict) -> None:
    pid = project["id"]
    items = api.post(f"/api/projects/{pid}/tasks/bulk",
                     {"batchId": "map", "tasks": [{"instructions": f"map {i}"} for i in range(3)]})
    assert items.status_code == 201
    reduce_ = api.task(pid, instructions="reduce", dependsOnBatch="map")
    assert reduce_["status"] == "waiting"
    assert _figures(api, pid, "map")["batch"] == (0, False)
    late = api.task(pid, instructions="map late", batchId="map")  # joins before it finishes

    agents = []
    for index in range(4):
        task = _lease(api, f"m{index}", pid)
        assert task is not None and task["id"] != reduce_["id"]
        agents.append((task, f"m{index}"))
    assert _lease(api, "r", pid) is None
    for task, agent in agents[:-1]:
        _complete(api, task, agent)
    assert _status(api, reduce_) == "waiting"
    assert agents[-1][0]["id"] == late["id"]
    _fail(api, *agents[-1])  # one failed map: the reduce fails (policy "fail")
    read = api.get(f"/api/tasks/{reduce_['id']}").get_json()["data"]
    assert read["status"] == "failed" and "map" in read["error"]

    runner = api.task(pid, instructions="reduce anyway", dependsOnBatch="map",
                      onDependencyFailure="run")
    assert runner["status"] == "queued"  # the batch had already finished
    leased = _lease(api, "r", pid)
    assert leased["id"] == runner["id"]
    assert leased["dependencyBatch"] == {"batchId": "map", "total": 4, "completed": 3,
                                         "failed": 1, "cancelled": 0}


def test_a_bulk_may_hold_a_batch_and_its_reduce(api: Api, project: dict) -> None:
    pid = project["id"]
    body = {"tasks": [{"instructions": "m1", "batchId": "b"}, {"instructions": "m2",
                                                                "batchId": "b"},
                      {"instructions": "r", "dependsOnBatch": "b"}]}
    created = api.post(f"/api/projects/{pid}/tasks/bulk", body).get_json()["data"]
    assert [t["status"] for t in created["createdTasks"]] == ["queued", "queued", "waiting"]
    for agent in ("a", "b"):
        _complete(api, _lease(api, agent, pid), agent)
    assert _lease(api, "c", pid)["id"] == created["createdTasks"][2]["id"]


def test_unknown_and_foreign_ids_are_refused(api: Api, project: dict) -> None:
    pid = project["id"]
    other = api.project("other")
    foreign = api.task(other["id"])
    mine = api.task(pid)
    for bad in (foreign["id"], "00000000-0000-4000-8000-000000000000"):
        response = api.post(f"/api/projects/{pid}/tasks",
                            {"instructions": "x", "dependsOn": [mine["id"], bad]})
        assert response.status_code == 422
        body = response.get_json()
        assert body["validationDetails"][0]["field"] == "dependsOn.1"
        assert "other" not in str(body) and other["id"] not in str(body)
    response = api.post(f"/api/projects/{pid}/tasks", {"instructions": "x",
                                                       "dependsOnBatch": "nothing"})
    assert response.status_code == 422
    assert response.get_json()["validationDetails"][0]["field"] == "dependsOnBatch"
    response = api.post(f"/api/projects/{pid}/tasks", {"instructions": "x",
                                                       "onDependencyFailure": "maybe"})
    assert response.status_code == 422
    bulk = api.post(f"/api/projects/{pid}/tasks/bulk",
                    {"tasks": [{"instructions": "ok"},
                               {"instructions": "x", "dependsOn": [foreign["id"]]}]})
    errors = bulk.get_json()["data"]["errors"]
    assert [e["index"] for e in errors] == [1]
    assert errors[0]["validationDetails"][0]["field"] == "dependsOn.0"
    on_batch = api.task(pid, batchId="own")
    waits = api.task(pid, dependsOnBatch="own")
    for body in ({"dependsOnBatch": "own", "batchId": "own"},  # its own batch
                 {"dependsOn": [waits["id"]], "batchId": "own"}):  # would wait for itself
        response = api.post(f"/api/projects/{pid}/tasks", {"instructions": "x", **body})
        assert response.status_code == 422, body
    assert on_batch["status"] == "queued"
    too_many = api.post(f"/api/projects/{pid}/tasks",
                        {"instructions": "x", "dependsOn": [mine["id"]] * 101})
    assert too_many.status_code == 422


def test_a_task_others_depend_on_is_not_deleted(api: Api, project: dict) -> None:
    pid = project["id"]
    first = api.task(pid, batchId="b")
    api.task(pid, dependsOn=[first["id"]])
    assert api.delete(f"/api/tasks/{first['id']}").status_code == 409
    member = api.task(pid, batchId="c")
    api.task(pid, dependsOnBatch="c")
    assert api.delete(f"/api/tasks/{member['id']}").status_code == 409
    assert api.put(f"/api/tasks/{member['id']}", {"batchId": None}).status_code == 409


def test_an_expired_lease_out_of_retries_fails_its_dependents(api: Api, project: dict,
                                                              clock: Clock) -> None:
    pid = project["id"]
    once = api.task(pid, instructions="once")
    api.put(f"/api/tasks/{once['id']}", {})  # untouched
    dependent = api.task(pid, dependsOn=[once["id"]])
    for attempt in range(4):  # three retries, then the lease's expiry fails it
        assert _lease(api, f"w{attempt}", pid)["id"] == once["id"]
        clock.advance(11 * 60)
        api.post(f"/api/projects/{pid}/cleanup-leases")
    assert _status(api, once) == "failed" and _status(api, dependent) == "failed"


ROUNDS = 12


def _race(*calls: Any) -> None:
    """Run the calls at the same moment, each in its own thread."""
    barrier = threading.Barrier(len(calls))
    failures: list[BaseException] = []

    def run(call: Any) -> None:
        barrier.wait(timeout=30)
        try:
            call()
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures


def test_concurrent_finishes_and_creates_release_every_dependent(app: Any, backend: str
                                                                 ) -> None:
    """The last two tasks of a batch finished at once (PostgreSQL runs them side by side):
    one of the two sees the other's finish; a dependent created while its dependency
    finishes sees the finish, or the finish sees it."""
    for index in range(ROUNDS):
        api = Api(app.test_client())
        pid = api.project(f"race-{index}")["id"]
        first, second = (api.task(pid, batchId="b", instructions=name) for name in "xy")
        on_batch = api.task(pid, dependsOnBatch="b")
        on_both = api.task(pid, dependsOn=[first["id"], second["id"]])
        leased = [_lease(api, agent, pid) for agent in ("a1", "a2")]
        _race(partial(_complete, Api(app.test_client()), leased[0], "a1"),
              partial(_complete, Api(app.test_client()), leased[1], "a2"))
        assert (_status(api, on_batch), _status(api, on_both)) == ("queued", "queued"), index

        late = api.task(pid, batchId="c")
        leased_late = _lease(api, "a3", pid)
        while leased_late["id"] != late["id"]:  # the released ones come first
            _complete(api, leased_late, "a3")
            leased_late = _lease(api, "a3", pid)
        created: list[dict[str, Any]] = []
        _race(partial(_complete, Api(app.test_client()), leased_late, "a3"),
              partial(_create_two, Api(app.test_client()), pid, late["id"], "c", created))
        assert [_status(api, task) for task in created] == ["queued", "queued"], index


def _create_two(api: Api, project_id: str, task_id: str, batch_id: str,
                into: list[dict[str, Any]]) -> None:
    """A dependent of the task, then one of the batch."""
    into.append(api.task(project_id, dependsOn=[task_id]))
    into.append(api.task(project_id, dependsOnBatch=batch_id))


def test_dashboard_task_page_links_both_ways_and_project_counts_waiting(
        app: Any, api: Api, project: dict) -> None:
    pid = project["id"]
    root = api.task(pid, instructions="root", batchId="b")
    child = api.task(pid, instructions="child", dependsOn=[root["id"]])
    on_batch = api.task(pid, instructions="on batch", dependsOnBatch="b")
    browser = app.test_client()
    browser.post("/dashboard/login", data={"token": ADMIN_TOKEN})
    page = browser.get(f"/dashboard/tasks/{root['id']}").get_data(as_text=True)
    for dependent in (child, on_batch):  # what waits for it, linked
        assert f'href="/dashboard/tasks/{dependent["id"]}"' in page
    page = browser.get(f"/dashboard/tasks/{child['id']}").get_data(as_text=True)
    assert f'href="/dashboard/tasks/{root["id"]}"' in page and "Waits for" in page
    page = browser.get(f"/dashboard/tasks/{on_batch['id']}").get_data(as_text=True)
    assert "Waits for batch" in page and "0 of 1 completed" in page
    page = browser.get(f"/dashboard/projects/{pid}").get_data(as_text=True)
    assert 'id="count-waiting">2<' in page


def test_the_openapi_document_shows_the_fields(api: Api) -> None:
    schemas = api.as_token(None).get("/api/openapi.json").get_json()["components"]["schemas"]
    for name in ("TaskArgs", "Task"):  # what a create takes, what every task answer has
        fields = schemas[name]["properties"]
        assert {"dependsOn", "dependsOnBatch", "onDependencyFailure"} <= set(fields), name
        assert fields["onDependencyFailure"]["enum"] == ["fail", "run"], name
    assert schemas["TaskArgs"]["properties"]["dependsOn"]["maxItems"] == 100
    detail = schemas["TaskDetail"]["properties"]
    assert {"dependencies", "dependencyBatch", "dependents", "dependsOn"} <= set(detail)
    assert "waitingTasks" in schemas["Stats"]["properties"]
    assert "waiting" in schemas["Batch"]["properties"]


def test_the_file_index_is_rebuilt_from_the_journal_and_a_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a task depends on is stored with it; a worker that loads the project (from its
    journal, or from a snapshot after compaction) indexes it again."""
    monkeypatch.setattr(journal, "MIN_COMPACT_BYTES", 2000)
    data_dir = tmp_path / "data"
    app = make_app(data_dir)
    api = Api(app.test_client())
    pid = api.project("kept")["id"]
    root = api.task(pid, instructions="root", batchId="b")
    on_root = api.task(pid, dependsOn=[root["id"]], onDependencyFailure="run")
    on_batch = api.task(pid, dependsOnBatch="b")
    close_app(app)
    for padding in (False, True):  # first from the journal, then from a snapshot
        app = make_app(data_dir)
        api = Api(app.test_client())
        if padding:
            for _ in range(20):
                api.task(pid, instructions="y" * 300)
            close_app(app)
            assert (data_dir / "projects" / pid / "snapshot.json").stat().st_size > 2000
            app = make_app(data_dir)
            api = Api(app.test_client())
        read = api.get(f"/api/tasks/{root['id']}").get_json()["data"]
        assert sorted(read["dependents"]) == sorted([on_root["id"], on_batch["id"]])
        assert api.get(f"/api/tasks/{on_root['id']}").get_json()["data"][
            "onDependencyFailure"] == "run"
        assert api.delete(f"/api/tasks/{root['id']}").status_code == 409
        close_app(app)
    app = make_app(data_dir)
    api = Api(app.test_client())
    _complete(api, _lease(api, "w", pid), "w")
    assert (_status(api, on_root), _status(api, on_batch)) == ("queued", "queued")
    close_app(app)


def test_a_long_poll_wakes_when_a_dependent_is_released(app: Any, api: Api,
                                                        project: dict) -> None:
    pid = project["id"]
    root = api.task(pid, instructions="root")
    dependent = api.task(pid, instructions="next", dependsOn=[root["id"]])
    leased = _lease(api, "first", pid)
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(Api(app.test_client()).post(
        "/api/agents/second/next-task", {"projectId": pid, "waitSeconds": 20}).get_json()))
    started = time.monotonic()
    waiter.start()
    time.sleep(0.5)  # the poll is waiting: nothing is leasable, the dependent waits
    _complete(api, leased, "first")
    waiter.join(timeout=30)
    assert got and got[0]["data"]["task"]["id"] == dependent["id"]
    assert time.monotonic() - started < 15  # woken by the release, not by the timeout


def test_a_cancelled_dependency_counts_as_failed(api: Api, project: dict) -> None:
    """Cancel (issue 22) ends a dependency like a failure: the dependent fails naming it,
    in the cancel's own commit, and so does its own dependent; with "run" it is queued."""
    pid = project["id"]
    first = api.task(pid, instructions="map")
    join = api.task(pid, instructions="reduce", dependsOn=[first["id"]])
    after = api.task(pid, instructions="report", dependsOn=[join["id"]])
    anyway = api.task(pid, instructions="tidy", dependsOn=[first["id"]],
                      onDependencyFailure="run")
    response = api.post(f"/api/tasks/{first['id']}/cancel", {"reason": "not needed"})
    assert response.status_code == 200, response.get_json()
    assert _status(api, join) == "failed" and _status(api, after) == "failed"
    assert first["id"] in api.get(f"/api/tasks/{join['id']}").get_json()["data"]["error"]
    assert _status(api, anyway) == "queued"
    assert _lease(api, "w1", pid)["id"] == anyway["id"]


def test_a_waiting_task_can_be_cancelled_and_bulk_cancel_ends_pipelines(
        api: Api, project: dict) -> None:
    pid = project["id"]
    first = api.task(pid, instructions="map", batchId="b1")
    join = api.task(pid, instructions="reduce", dependsOn=[first["id"]], batchId="b1")
    response = api.post(f"/api/tasks/{join['id']}/cancel", {})
    assert response.status_code == 200 and response.get_json()["data"]["status"] == "cancelled"
    again = api.task(pid, instructions="reduce again", dependsOn=[first["id"]], batchId="b1")
    response = api.post(f"/api/projects/{pid}/tasks/cancel", {"batchId": "b1"})
    assert response.get_json()["data"] == {"cancelled": 2}  # the map and the waiting one
    assert _status(api, again) == "cancelled" and _status(api, first) == "cancelled"
    assert api.get(f"/api/projects/{pid}/batches/b1").get_json()["data"]["done"] is True
