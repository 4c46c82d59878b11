"""Fleet controls through the HTTP surface, on both backends: concurrency and rate limits
per task type, pause and resume, cancel (one and bulk), and a holder's progress.

The cross-process guarantees (several gunicorn workers) are in `test_controls_live.py`.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import ALL_BACKENDS, Api, Clock

BACKENDS = ALL_BACKENDS


def _types(api: Api, project_id: str, **limited: Any) -> tuple[str, str]:
    """A controlled type (`limited` are its fields) and a free one, three tasks each, the
    controlled type's created first (older: they would go first)."""
    controlled = api.task_type(project_id, "limited", **limited)["id"]
    free = api.task_type(project_id, "free")["id"]
    for type_id in (controlled, free):
        for _ in range(3):
            api.task(project_id, typeId=type_id)
    return controlled, free


def _lease(api: Api, agent: str, project_id: str) -> dict[str, Any] | None:
    response = api.next_task(agent, project_id)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["task"]


def _peek(api: Api, project_id: str) -> int:
    return api.get(f"/api/projects/{project_id}/peek-next-task").get_json()[
        "data"]["tasksAvailable"]


def test_max_concurrent_hands_out_other_types_meanwhile(api: Api, project: dict) -> None:
    pid = project["id"]
    limited, free = _types(api, pid, maxConcurrent=2)
    assert api.get(f"/api/task-types/{limited}").get_json()["data"]["maxConcurrent"] == 2
    leased = [_lease(api, f"a{n}", pid) for n in range(4)]
    assert [t["typeId"] for t in leased if t] == [limited, limited, free, free]
    # 1 limited task could be leased if there were room, 1 free one: only the free counts.
    assert _peek(api, pid) == 1
    api.post(f"/api/tasks/{leased[0]['id']}/complete", {"agentName": "a0"})
    assert _lease(api, "a9", pid)["typeId"] == limited  # room again: at once
    api.put(f"/api/task-types/{limited}", {"maxConcurrent": None})
    assert _lease(api, "a10", pid)["typeId"] == free  # its last task; limited has none left


def test_rate_limit_counts_lease_starts_in_a_sliding_window(api: Api, project: dict,
                                                            clock: Clock) -> None:
    pid = project["id"]
    limited, free = _types(api, pid, rateLimit={"count": 2, "perSeconds": 10})
    first = [_lease(api, f"a{n}", pid) for n in range(3)]
    assert [t["typeId"] for t in first] == [limited, limited, free]
    assert _lease(api, "a0", pid)["id"] == first[0]["id"]  # a resume is no new lease
    api.post(f"/api/tasks/{first[0]['id']}/complete", {"agentName": "a0"})
    assert _lease(api, "a0", pid)["typeId"] == free  # finishing gives no rate back
    clock.advance(9)
    assert _lease(api, "a5", pid)["typeId"] == free
    assert _lease(api, "a6", pid) is None
    clock.advance(1.5)  # the first two starts leave the window
    assert _lease(api, "a6", pid)["typeId"] == limited


def test_a_paused_type_and_a_paused_project_hand_out_nothing_until_resumed(
        api: Api, project: dict) -> None:
    pid = project["id"]
    paused, free = _types(api, pid)
    held = _lease(api, "holder", pid)
    assert held["typeId"] == paused
    changed = api.put(f"/api/task-types/{paused}", {"paused": True}).get_json()["data"]
    assert changed["paused"] is True
    assert _peek(api, pid) == 3
    assert [_lease(api, f"a{n}", pid)["typeId"] for n in range(3)] == [free] * 3
    assert _lease(api, "a3", pid) is None
    assert _lease(api, "holder", pid)["id"] == held["id"]  # its resume still works
    api.put(f"/api/task-types/{paused}", {"paused": False})
    assert _lease(api, "a3", pid)["typeId"] == paused

    assert api.put(f"/api/projects/{pid}", {"paused": True}).get_json()["data"]["paused"]
    assert api.get(f"/api/projects/{pid}").get_json()["data"]["paused"] is True
    assert _lease(api, "a4", pid) is None and _peek(api, pid) == 0
    api.task(pid, instructions="still accepted")
    assert _lease(api, "holder", pid)["id"] == held["id"]
    done = api.post(f"/api/tasks/{held['id']}/complete", {"agentName": "holder"})
    assert done.status_code == 200
    api.put(f"/api/projects/{pid}", {"paused": False})
    assert _lease(api, "a4", pid) is not None


def test_cancel_queued_and_running_tasks(api: Api, project: dict) -> None:
    pid = project["id"]
    queued = api.task(pid, instructions="one")
    api.task(pid, instructions="two")
    running = _lease(api, "w", pid)
    assert running["id"] == queued["id"]
    other = api.task(pid)

    agent = api.login("w", pid)
    refused = agent.post(f"/api/tasks/{other['id']}/cancel", {})
    assert refused.status_code == 403
    response = api.post(f"/api/tasks/{running['id']}/cancel", {"reason": "wrong input"})
    assert response.status_code == 200, response.get_json()
    cancelled = response.get_json()["data"]
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "wrong input"
    assert cancelled["attempts"][-1]["status"] == "cancelled"
    assert cancelled["leaseExpiresAt"] is None
    for action, body in (("complete", {}), ("fail", {"error": "x"}),
                         ("extend-lease", {"extensionMinutes": 1}),
                         ("progress", {"progress": 5})):
        late = agent.post(f"/api/tasks/{running['id']}/{action}", body)
        assert late.status_code == 409, (action, late.get_json())
        assert "cancelled" in late.get_json()["error"]

    plain = api.post(f"/api/tasks/{other['id']}/cancel").get_json()["data"]
    assert plain["status"] == "cancelled" and plain["error"]
    assert api.post(f"/api/tasks/{other['id']}/cancel").status_code == 409
    stats = api.get(f"/api/projects/{pid}/stats").get_json()["data"]["project"]["stats"]
    assert stats["cancelledTasks"] == 2 and stats["queuedTasks"] == 1
    listed = api.get(f"/api/projects/{pid}/tasks?status=cancelled").get_json()
    assert {t["id"] for t in listed["data"]} == {running["id"], other["id"]}
    assert _lease(api, "w", pid)["instructions"] == "two"  # the agent goes on working


def test_bulk_cancel_by_batch_type_and_status(api: Api, project: dict) -> None:
    pid = project["id"]
    kind = api.task_type(pid)["id"]
    for _ in range(3):
        api.task(pid, batchId="b1", typeId=kind)
    api.task(pid, batchId="b2")
    _lease(api, "w", pid)  # one of b1's runs
    path = f"/api/projects/{pid}/tasks/cancel"
    assert api.post(path, {"batchId": "b1", "status": "running"}).get_json()[
        "data"] == {"cancelled": 1}
    assert api.post(path, {"batchId": "b1"}).get_json()["data"] == {"cancelled": 2}
    batch = api.get(f"/api/projects/{pid}/batches/b1").get_json()["data"]
    assert (batch["cancelled"], batch["done"]) == (3, True)
    assert api.get(f"/api/projects/{pid}/batches/b2").get_json()["data"]["queued"] == 1
    assert api.post(path, {"typeId": kind}).get_json()["data"] == {"cancelled": 0}
    assert api.post(path).get_json()["data"] == {"cancelled": 1}  # b2's, untyped
    agent = api.login("w", pid)
    assert agent.post(path, {}).status_code == 403


def test_progress_is_the_holders_alone(api: Api, project: dict, clock: Clock) -> None:
    pid = project["id"]
    api.task(pid)
    task = _lease(api, "w", pid)
    holder = api.login("w", pid)
    path = f"/api/tasks/{task['id']}/progress"
    response = holder.post(path, {"progress": 40, "message": "halfway"})
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert (data["progress"], data["progressMessage"]) == (40, "halfway")
    assert data["progressAt"] is not None
    clock.advance(1)
    extended = holder.post(path, {"extensionMinutes": 30}).get_json()["data"]
    assert extended["leaseExpiresAt"] > data["leaseExpiresAt"]
    assert extended["progress"] == 40  # left out: kept
    stored = api.get(f"/api/tasks/{task['id']}").get_json()["data"]
    assert stored["progressMessage"] == "halfway"
    other = api.login("intruder", pid)
    assert other.post(path, {"progress": 90}).status_code in (403, 409)
    assert api.post(path, {"agentName": "intruder", "progress": 90}).status_code == 409
    assert api.get(f"/api/tasks/{task['id']}").get_json()["data"]["progress"] == 40


@pytest.mark.parametrize(("where", "body", "field"), [
    ("type", {"maxConcurrent": 0}, "maxConcurrent"),
    ("type", {"maxConcurrent": 100_001}, "maxConcurrent"),
    ("type", {"maxConcurrent": 2.5}, "maxConcurrent"),
    ("type", {"rateLimit": {"count": 0, "perSeconds": 1}}, "rateLimit.count"),
    ("type", {"rateLimit": {"count": 5, "perSeconds": 86_401}}, "rateLimit.perSeconds"),
    ("type", {"rateLimit": {"count": 5}}, "rateLimit.perSeconds"),
    ("type", {"paused": "yes"}, "paused"),
    ("project", {"paused": 1}, "paused"),
    ("progress", {"progress": 101}, "progress"),
    ("progress", {"progress": -1}, "progress"),
    ("progress", {"message": "x" * 1001}, "message"),
    ("progress", {"extensionMinutes": 0.01}, "extensionMinutes"),
    ("progress", {}, "progress"),
    ("cancel", {"reason": "x" * 1001}, "reason"),
    ("cancel-many", {"status": "completed"}, "status"),
])
def test_out_of_range_values_are_refused_naming_the_field(
        api: Api, project: dict, where: str, body: dict, field: str) -> None:
    pid = project["id"]
    kind = api.task_type(pid)["id"]
    task = api.task(pid)
    _lease(api, "w", pid)
    path = {"type": f"/api/task-types/{kind}", "project": f"/api/projects/{pid}",
            "progress": f"/api/tasks/{task['id']}/progress",
            "cancel": f"/api/tasks/{task['id']}/cancel",
            "cancel-many": f"/api/projects/{pid}/tasks/cancel"}[where]
    body = {**body, "agentName": "w"} if where == "progress" else body
    response = api.put(path, body) if where in ("type", "project") else api.post(path, body)
    assert response.status_code == 422, response.get_json()
    fields = [d["field"] for d in response.get_json()["validationDetails"]]
    assert field in fields, fields
    created = api.post(f"/api/projects/{pid}/task-types", {"name": "x", **body})
    assert created.status_code == 422 or where != "type"


def test_none_of_the_new_fields_keeps_todays_answers(api: Api, project: dict) -> None:
    data = api.task_type(project["id"])
    assert (data["maxConcurrent"], data["rateLimit"], data["paused"]) == (None, None, False)
    assert api.get(f"/api/projects/{project['id']}").get_json()["data"]["paused"] is False
    task = api.task(project["id"])
    assert (task["progress"], task["progressMessage"], task["progressAt"]) == (None,) * 3
