"""Projects: create, list, read, update, delete, stats."""

from __future__ import annotations

from conftest import ALL_BACKENDS, Api

BACKENDS = ALL_BACKENDS

ZERO_STATS = {"totalTasks": 0, "completedTasks": 0, "failedTasks": 0, "queuedTasks": 0,
              "runningTasks": 0, "cancelledTasks": 0, "waitingTasks": 0,
              "archivedTasks": 0}


def test_create_with_defaults(api: Api) -> None:
    response = api.post("/api/projects", {"name": "ai-analysis"})
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["description"] == "" and data["instructions"] == ""
    assert data["status"] == "active"
    assert data["config"] == {"defaultMaxRetries": 3, "defaultLeaseDurationMinutes": 10,
                              "reaperIntervalMinutes": 1, "archiveAfterDays": 7,
                              "deleteArchivedAfterDays": None}
    assert data["stats"] == ZERO_STATS
    assert data["createdAt"].endswith("Z") and data["updatedAt"] == data["createdAt"]


def test_create_like_the_seed(api: Api) -> None:
    body = {"name": "ai-analysis", "description": "AI-powered code analysis project",
            "instructions": "Follow security best practices when analyzing code...",
            "config": {"defaultMaxRetries": 3, "defaultLeaseDurationMinutes": 15,
                       "reaperIntervalMinutes": 2}}
    data = api.post("/api/projects", body).get_json()["data"]
    assert {k: data[k] for k in body if k != "config"} == {
        k: v for k, v in body.items() if k != "config"}
    assert {k: data["config"][k] for k in body["config"]} == body["config"]


def test_names_are_unique_and_validated(api: Api) -> None:
    api.project("dup")
    response = api.post("/api/projects", {"name": "dup"})
    assert response.status_code == 409
    assert "dup" in response.get_json()["error"]
    for bad in ("", "a" * 101, "sp ace", "slash/", "dot.name"):
        assert api.post("/api/projects", {"name": bad}).status_code == 422, bad
    assert api.post("/api/projects", {"name": "A-b_9" * 20}).status_code == 201


def test_config_limits(api: Api) -> None:
    for config in ({"defaultMaxRetries": -1}, {"defaultMaxRetries": 101},
                   {"defaultLeaseDurationMinutes": 0.01}, {"defaultLeaseDurationMinutes": 1441},
                   {"reaperIntervalMinutes": 0}, {"defaultMaxRetries": "many"}):
        assert api.post("/api/projects", {"name": "p", "config": config}).status_code == 422
    fine = api.post("/api/projects", {"name": "p", "config": {
        "defaultLeaseDurationMinutes": 0.05, "defaultMaxRetries": 0}})
    assert fine.status_code == 201


def test_get_and_404(api: Api, project: dict) -> None:
    data = api.get(f"/api/projects/{project['id']}").get_json()["data"]
    assert data == project
    assert api.get("/api/projects/00000000-0000-4000-8000-000000000000").status_code == 404


def test_update_is_partial_and_merges_config(api: Api, clock) -> None:
    project = api.project("p", description="d", config={"defaultMaxRetries": 7})
    clock.advance(5)
    response = api.put(f"/api/projects/{project['id']}",
                       {"instructions": "new", "config": {"defaultLeaseDurationMinutes": 2.5}})
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["description"] == "d" and data["instructions"] == "new"
    assert data["config"] == {"defaultMaxRetries": 7, "defaultLeaseDurationMinutes": 2.5,
                              "reaperIntervalMinutes": 1, "archiveAfterDays": 7,
                              "deleteArchivedAfterDays": None}
    assert data["updatedAt"] > data["createdAt"]
    assert api.get(f"/api/projects/{project['id']}").get_json()["data"] == data
    assert api.put(f"/api/projects/{project['id']}", {"status": "paused"}).status_code == 422


def test_rename_keeps_names_unique(api: Api) -> None:
    first, second = api.project("first"), api.project("second")
    assert api.put(f"/api/projects/{second['id']}", {"name": "first"}).status_code == 409
    renamed = api.put(f"/api/projects/{second['id']}", {"name": "third"})
    assert renamed.get_json()["data"]["name"] == "third"
    assert api.post("/api/projects", {"name": "second"}).status_code == 201
    assert first["name"] == "first"


def test_list_filters_by_status_and_pages(api: Api) -> None:
    ids = [api.project(f"p{i}")["id"] for i in range(5)]
    api.put(f"/api/projects/{ids[1]}", {"status": "closed"})
    active = api.get("/api/projects").get_json()
    assert [p["id"] for p in active["data"]] == [ids[0], *ids[2:]]
    assert active["pagination"] == {"total": 4, "limit": 100, "offset": 0}
    closed = api.get("/api/projects?status=closed").get_json()["data"]
    assert [p["id"] for p in closed] == [ids[1]]
    page = api.get("/api/projects?status=all&limit=2&offset=1").get_json()
    assert [p["id"] for p in page["data"]] == ids[1:3]
    assert page["pagination"] == {"total": 5, "limit": 2, "offset": 1}
    assert api.get("/api/projects?limit=101").status_code == 422


def test_delete_cascades_and_ends_sessions(api: Api, project: dict) -> None:
    task_type = api.task_type(project["id"])
    task = api.task(project["id"])
    agent = api.login("agent-1", "demo")
    response = api.delete(f"/api/projects/{project['id']}")
    assert response.status_code == 200
    assert response.get_json()["data"] == {"id": project["id"], "deleted": True}
    assert api.get(f"/api/projects/{project['id']}").status_code == 404
    assert api.get(f"/api/tasks/{task['id']}").status_code == 404
    assert api.get(f"/api/task-types/{task_type['id']}").status_code == 404
    assert agent.get("/api/auth/session").status_code == 401
    assert api.delete(f"/api/projects/{project['id']}").status_code == 404
    again = api.project("demo")  # the name is free again, and the new project is empty
    assert again["stats"]["totalTasks"] == 0


def test_stats_start_at_zero(api: Api, project: dict) -> None:
    data = api.get(f"/api/projects/{project['id']}/stats").get_json()["data"]
    assert data == {"project": {"id": project["id"], "name": "demo", "stats": ZERO_STATS},
                    "queueDepth": 0, "delayedTasks": 0, "activeAgents": 0,
                    "recentActivity": {"tasksCompletedLastHour": 0, "tasksFailedLastHour": 0,
                                       "averageTaskDuration": 0}}


def test_fsync_off_still_serves(tmp_path, backend: str) -> None:
    """TASKDRIVER_FSYNC=false changes durability settings, not behaviour."""
    from conftest import close_app, make_app, postgres_schema

    def exercise(**overrides: str) -> None:
        app = make_app(tmp_path / "data", TASKDRIVER_FSYNC="false", **overrides)
        api = Api(app.test_client())
        project = api.project("quick")
        api.task(project["id"])
        assert api.get(f"/api/projects/{project['id']}").get_json()["data"]["stats"][
            "totalTasks"] == 1
        close_app(app)

    if backend == "file":
        exercise()
    else:
        with postgres_schema() as url:
            exercise(TASKDRIVER_STORAGE_URL=url)
