"""`POST /api/tasks/{taskId}/release`: the holder gives its task back untouched."""

from __future__ import annotations

from typing import Any

from conftest import ALL_BACKENDS, Api, Clock

BACKENDS = ALL_BACKENDS


def lease(api: Api, agent: str, project_id: str | None = None) -> dict[str, Any]:
    body = api.next_task(agent, project_id).get_json()
    assert body["success"] is True, body
    return body["data"]["task"]


def test_release_puts_the_task_back_in_its_place_with_no_attempt(api: Api, project: dict,
                                                                 clock: Clock) -> None:
    api.task_type(project["id"], name="t", maxRetries=1)
    type_id = api.get(f"/api/projects/{project['id']}/task-types").get_json()["data"][0]["id"]
    first = api.task(project["id"], typeId=type_id, instructions="first")
    second = api.task(project["id"], instructions="second")
    agent = api.login("holder", "demo")
    assert lease(agent, "holder")["id"] == first["id"]
    agent.post(f"/api/tasks/{first['id']}/fail", {"error": "once"})  # one real attempt
    assert lease(agent, "holder")["id"] == first["id"]  # requeued in its place
    clock.advance(5)
    response = agent.post(f"/api/tasks/{first['id']}/release", {})
    assert response.status_code == 200, response.get_json()
    released = response.get_json()["data"]
    assert released["status"] == "queued" and released["retryCount"] == 1
    assert released["assignedTo"] is None and released["assignedAt"] is None
    assert released["leaseExpiresAt"] is None
    assert [a["status"] for a in released["attempts"]] == ["failed"]  # the release is none
    # Still first in line, ahead of the task created after it; the retry budget is intact.
    other = api.login("other", "demo")
    assert lease(other, "other")["id"] == first["id"]
    assert lease(agent, "holder")["id"] == second["id"]


def test_release_with_no_body_and_by_an_operator_naming_the_holder(api: Api,
                                                                    project: dict) -> None:
    task = api.task(project["id"])
    lease(api, "w", project["id"])
    response = api.call("POST", f"/api/tasks/{task['id']}/release")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attempts"] == []
    lease(api, "w", project["id"])
    response = api.post(f"/api/tasks/{task['id']}/release", {"agentName": "w"})
    assert response.get_json()["data"]["status"] == "queued"


def test_only_the_holder_releases(api: Api, project: dict) -> None:
    task = api.task(project["id"])
    holder, other = api.login("holder", "demo"), api.login("other", "demo")
    assert holder.post(f"/api/tasks/{task['id']}/release", {}).status_code == 409  # queued
    lease(holder, "holder")
    refused = other.post(f"/api/tasks/{task['id']}/release", {})
    assert refused.status_code == 409 and "not leased to agent other" in refused.get_json()[
        "error"]
    assert other.post(f"/api/tasks/{task['id']}/release",
                      {"agentName": "holder"}).status_code == 403
    assert api.post(f"/api/tasks/{task['id']}/release", {"agentName": "other"}).status_code \
        == 409
    assert holder.post(f"/api/tasks/{task['id']}/release",
                       {"agentName": "bad name"}).status_code == 422
    assert holder.post(f"/api/tasks/{task['id']}/release", {}).status_code == 200
    assert holder.post(f"/api/tasks/{task['id']}/release", {}).status_code == 409  # not again
    assert api.post("/api/tasks/not-a-uuid/release", {}).status_code == 404
