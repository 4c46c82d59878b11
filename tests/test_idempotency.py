"""Idempotency-Key on creates: a repeat returns the first answer and creates nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import ALL_BACKENDS, Api, Clock, close_app, make_app, postgres_schema

BACKENDS = ALL_BACKENDS


def keyed(key: str) -> dict[str, Any]:
    return {"headers": {"Idempotency-Key": key}}


def total_tasks(api: Api, project_id: str) -> int:
    return api.get(f"/api/projects/{project_id}").get_json()["data"]["stats"]["totalTasks"]


def test_a_repeated_bulk_creates_nothing_and_answers_the_same(api: Api, project: dict
                                                              ) -> None:
    path = f"/api/projects/{project['id']}/tasks/bulk"
    body = {"tasks": [{"instructions": f"t{i}"} for i in range(50)] + [{"bogus": 1}]}
    first = api.post(path, body, **keyed("bulk-1"))
    again = api.post(path, body, **keyed("bulk-1"))
    assert first.status_code == again.status_code == 201
    one, two = first.get_json()["data"], again.get_json()["data"]
    assert one["tasksCreated"] == two["tasksCreated"] == 50
    assert [t["id"] for t in one["createdTasks"]] == [t["id"] for t in two["createdTasks"]]
    assert one["errors"] == two["errors"] and one["errors"][0]["index"] == 50
    assert total_tasks(api, project["id"]) == 50
    other = api.post(path, body, **keyed("bulk-2"))  # another key is another request
    assert other.get_json()["data"]["tasksCreated"] == 50
    assert total_tasks(api, project["id"]) == 100


def test_the_same_key_with_another_body_is_409(api: Api, project: dict) -> None:
    path = f"/api/projects/{project['id']}/tasks"
    assert api.post(path, {"instructions": "a"}, **keyed("k")).status_code == 201
    refused = api.post(path, {"instructions": "b"}, **keyed("k"))
    assert refused.status_code == 409
    assert "Idempotency-Key" in refused.get_json()["error"]
    # same body, keys reordered and spaced differently: still a repeat
    same = api.call("POST", path, data='{ "instructions" : "a" }', **keyed("k"),
                    content_type="application/json")
    assert same.status_code == 201
    assert total_tasks(api, project["id"]) == 1


def test_every_create_honours_the_key(api: Api) -> None:
    first = api.post("/api/projects", {"name": "once"}, **keyed("p"))
    again = api.post("/api/projects", {"name": "once"}, **keyed("p"))
    assert first.status_code == again.status_code == 201  # not 409 "name taken"
    project_id = first.get_json()["data"]["id"]
    assert again.get_json()["data"]["id"] == project_id
    path = f"/api/projects/{project_id}/task-types"
    one = api.post(path, {"name": "t"}, **keyed("t"))
    two = api.post(path, {"name": "t"}, **keyed("t"))
    assert one.status_code == two.status_code == 201
    assert one.get_json()["data"]["id"] == two.get_json()["data"]["id"]
    listed = api.get(path).get_json()["pagination"]["total"]
    assert listed == 1


def test_a_key_is_remembered_24_hours(api: Api, project: dict, clock: Clock) -> None:
    path = f"/api/projects/{project['id']}/tasks"
    first = api.post(path, {"instructions": "a"}, **keyed("day")).get_json()["data"]["id"]
    clock.advance(23 * 3600)
    assert api.post(path, {"instructions": "a"}, **keyed("day")).get_json()["data"]["id"] \
        == first
    clock.advance(3601)
    later = api.post(path, {"instructions": "a"}, **keyed("day"))
    assert later.status_code == 201 and later.get_json()["data"]["id"] != first


def test_keys_are_validated(api: Api, project: dict) -> None:
    path = f"/api/projects/{project['id']}/tasks"
    for bad in ("", "x" * 256, "has space", "tab\tkey"):
        response = api.post(path, {"instructions": "a"}, **keyed(bad))
        assert response.status_code == 422, bad
        assert response.get_json()["validationDetails"][0]["field"] == "Idempotency-Key"
    assert total_tasks(api, project["id"]) == 0


def test_an_agent_and_the_operator_do_not_share_a_key(api: Api, project: dict) -> None:
    path = f"/api/projects/{project['id']}/tasks"
    agent = api.login("a1", project["id"])
    assert api.post(path, {"instructions": "a"}, **keyed("shared")).status_code == 201
    assert agent.post(path, {"instructions": "a"}, **keyed("shared")).status_code == 409


def test_keys_survive_a_restart(tmp_path: Path, backend: str) -> None:
    def run(url: str | None) -> None:
        extra = {"TASKDRIVER_STORAGE_URL": url} if url else {}
        app = make_app(tmp_path / "data", **extra)
        api = Api(app.test_client())
        project = api.project("durable")
        path = f"/api/projects/{project['id']}/tasks/bulk"
        body = {"tasks": [{"instructions": "x"}] * 10}
        first = api.post(path, body, **keyed("k")).get_json()["data"]["createdTasks"]
        close_app(app)
        app = make_app(tmp_path / "data", **extra)
        api = Api(app.test_client())
        again = api.post(path, body, **keyed("k")).get_json()["data"]["createdTasks"]
        assert [t["id"] for t in again] == [t["id"] for t in first]
        assert total_tasks(api, project["id"]) == 10
        close_app(app)

    if backend == "file":
        run(None)
    else:
        with postgres_schema() as url:
            run(url)


def test_the_reaper_forgets_old_keys(api: Api, app, project: dict, clock: Clock) -> None:
    path = f"/api/projects/{project['id']}/tasks"
    api.post(path, {"instructions": "a"}, **keyed("old"))
    api.post("/api/projects", {"name": "other"}, **keyed("old-project"))
    storage = app.extensions["taskdriver"].driver.storage

    def kept(key: str) -> bool:
        with storage.project_tx(project["id"], write=False) as tx:
            return tx.get_idempotency(key) is not None

    clock.advance(20 * 3600)
    api.post(path, {"instructions": "young"}, **keyed("young"))
    clock.advance(5 * 3600)
    assert kept("old") and kept("young")
    assert app.test_cli_runner().invoke(args=["taskdriver", "reap"]).exit_code == 0
    assert not kept("old") and kept("young")
    with storage.global_tx(write=False) as global_tx:
        assert global_tx.get_idempotency("old-project") is None
