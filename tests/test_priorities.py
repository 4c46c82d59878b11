"""Priorities, delayed tasks and retry backoff, on both backends, through the API."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from conftest import ALL_BACKENDS, Api, Clock

BACKENDS = ALL_BACKENDS


def lease(api: Api, project_id: str, agent: str = "w") -> dict[str, Any] | None:
    body = api.next_task(agent, project_id).get_json()
    return body["data"]["task"] if body["success"] else None


def finish(api: Api, task: dict[str, Any], agent: str = "w") -> None:
    api.post(f"/api/tasks/{task['id']}/complete", {"agentName": agent})


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat().replace("+00:00", "Z")


def test_highest_priority_first_then_oldest(api: Api, project: dict) -> None:
    pid = project["id"]
    urgent_type = api.task_type(pid, "urgent", priority=5)
    low = api.task(pid, instructions="low", priority=-1)
    plain_old = api.task(pid, instructions="plain old")
    typed = api.post(f"/api/projects/{pid}/tasks", {"typeId": urgent_type["id"],
                                                     "instructions": "typed"}).get_json()["data"]
    plain_young = api.task(pid, instructions="plain young")
    top = api.task(pid, instructions="top", priority=1000)
    assert typed["priority"] == 5 and plain_old["priority"] == 0
    order = []
    while (task := lease(api, pid)) is not None:
        order.append(task["id"])
        finish(api, task)
    assert order == [top["id"], typed["id"], plain_old["id"], plain_young["id"], low["id"]]


def test_a_retried_task_keeps_its_place_and_priority_can_change_while_queued(
        api: Api, project: dict) -> None:
    pid = project["id"]
    first, second = api.task(pid, instructions="a"), api.task(pid, instructions="b")
    leased = lease(api, pid)
    assert leased is not None and leased["id"] == first["id"]
    api.post(f"/api/tasks/{first['id']}/fail", {"agentName": "w", "error": "x"})
    assert lease(api, pid, "v")["id"] == first["id"]  # back at the head, not the tail
    raised = api.put(f"/api/tasks/{second['id']}", {"priority": 7}).get_json()["data"]
    assert raised["priority"] == 7


def test_a_delayed_task_waits_for_its_moment(api: Api, project: dict, clock: Clock) -> None:
    pid = project["id"]
    later = api.task(pid, instructions="later", delaySeconds=60)
    at = api.task(pid, instructions="at", runAfter=rfc3339(clock.now + 120))
    assert later["runAfter"] is not None and later["status"] == "queued"
    assert lease(api, pid) is None
    assert api.get(f"/api/projects/{pid}/peek-next-task").get_json()["data"][
        "tasksAvailable"] == 0
    stats = api.get(f"/api/projects/{pid}/stats").get_json()["data"]
    assert stats["delayedTasks"] == 2 and stats["queueDepth"] == 2
    clock.advance(61)
    assert api.get(f"/api/tasks/{later['id']}").get_json()["data"]["runAfter"] is None
    assert api.get(f"/api/projects/{pid}/peek-next-task").get_json()["data"][
        "tasksAvailable"] == 1
    assert api.get(f"/api/projects/{pid}/stats").get_json()["data"]["delayedTasks"] == 1
    assert lease(api, pid)["id"] == later["id"]
    assert lease(api, pid, "v") is None
    clock.advance(60)
    assert lease(api, pid, "v")["id"] == at["id"]


def test_bulk_items_take_priority_and_delay(api: Api, project: dict) -> None:
    created = api.post(f"/api/projects/{project['id']}/tasks/bulk", {"tasks": [
        {"instructions": "x", "priority": 3}, {"instructions": "y", "delaySeconds": 30},
        {"instructions": "z", "delaySeconds": 30, "runAfter": "2030-01-01T00:00:00Z"}]}
    ).get_json()["data"]
    assert created["tasksCreated"] == 2
    assert created["createdTasks"][0]["priority"] == 3
    assert created["createdTasks"][1]["runAfter"] is not None
    assert created["errors"][0]["index"] == 2


def test_bad_values_are_422_naming_the_field(api: Api, project: dict) -> None:
    path = f"/api/projects/{project['id']}/tasks"
    cases = [({"priority": 1001}, "priority"), ({"priority": -1001}, "priority"),
             ({"priority": 1.5}, "priority"), ({"delaySeconds": -1}, "delaySeconds"),
             ({"delaySeconds": 31_536_001}, "delaySeconds"),
             ({"runAfter": "tomorrow"}, "runAfter"),
             ({"runAfter": "2030-01-01T00:00:00"}, "runAfter"),  # no time zone
             ({"delaySeconds": 5, "runAfter": "2030-01-01T00:00:00Z"}, "delaySeconds")]
    for extra, field in cases:
        response = api.post(path, {"instructions": "x", **extra})
        assert response.status_code == 422, extra
        assert response.get_json()["validationDetails"][0]["field"] == field, extra
    types = f"/api/projects/{project['id']}/task-types"
    for extra, field in (({"retryDelaySeconds": -1}, "retryDelaySeconds"),
                         ({"retryBackoff": "linear"}, "retryBackoff"),
                         ({"maxRetryDelaySeconds": "60"}, "maxRetryDelaySeconds"),
                         ({"priority": 5000}, "priority")):
        response = api.post(types, {"name": "t", **extra})
        assert response.status_code == 422, extra
        assert response.get_json()["validationDetails"][0]["field"] == field


def backoff_project(api: Api, backoff: str) -> tuple[str, str]:
    project = api.project(f"backoff-{backoff}", config={"defaultMaxRetries": 5,
                                                        "defaultLeaseDurationMinutes": 1})
    kind = api.task_type(project["id"], "flaky", retryDelaySeconds=10, retryBackoff=backoff,
                         maxRetryDelaySeconds=25)
    task = api.post(f"/api/projects/{project['id']}/tasks", {
        "typeId": kind["id"], "instructions": "call the model"}).get_json()["data"]
    assert kind["retryBackoff"] == backoff and kind["maxRetryDelaySeconds"] == 25
    return project["id"], task["id"]


def due_in(api: Api, task_id: str, clock: Clock) -> float:
    run_after = api.get(f"/api/tasks/{task_id}").get_json()["data"]["runAfter"]
    moment = datetime.fromisoformat(run_after.replace("Z", "+00:00")).timestamp()
    return round(moment - clock.now, 1)


def test_exponential_backoff_after_failures_and_expired_leases_is_capped(
        api: Api, clock: Clock) -> None:
    pid, task_id = backoff_project(api, "exponential")
    delays = []
    for attempt in range(3):  # fail, fail, then let the lease expire
        leased = lease(api, pid)
        assert leased is not None and leased["id"] == task_id
        if attempt < 2:
            api.post(f"/api/tasks/{task_id}/fail", {"agentName": "w", "error": "429"})
        else:
            clock.advance(61)
            api.post(f"/api/projects/{pid}/cleanup-leases")
        delays.append(due_in(api, task_id, clock))
        assert lease(api, pid, "other") is None  # not before its time
        clock.advance(delays[-1])
    assert delays == [10.0, 20.0, 25.0]  # 10 × 2^(n−1), capped at 25


def test_fixed_backoff_waits_the_same_each_time(api: Api, clock: Clock) -> None:
    pid, task_id = backoff_project(api, "fixed")
    delays = []
    for _ in range(3):
        assert lease(api, pid)["id"] == task_id
        api.post(f"/api/tasks/{task_id}/fail", {"agentName": "w", "error": "429"})
        delays.append(due_in(api, task_id, clock))
        clock.advance(delays[-1])
    assert delays == [10.0, 10.0, 10.0]


def test_without_a_retry_delay_a_failed_task_is_due_at_once(api: Api, project: dict) -> None:
    task = api.task(project["id"])
    lease(api, project["id"])
    failed = api.post(f"/api/tasks/{task['id']}/fail", {"agentName": "w", "error": "x"})
    assert failed.get_json()["data"]["runAfter"] is None
    assert lease(api, project["id"], "v")["id"] == task["id"]


def test_any_mix_of_creates_leases_retries_delays_and_changes_keeps_the_order(
        api: Api, project: dict, clock: Clock) -> None:
    """Each lease takes the oldest due task of the highest priority, whatever happened
    before: 300 random steps, each lease checked against the task list (creation order)."""
    import random

    pid = project["id"]
    rng = random.Random(1300)
    held: dict[str, str] = {}  # agent -> task id
    for step in range(300):
        action = rng.choice(["create", "create", "create", "lease", "lease", "settle",
                             "reprioritise", "wait"])
        if action == "create":
            fields: dict[str, Any] = {"instructions": f"t{step}",
                                      "priority": rng.choice([-1, 0, 0, 0, 2])}
            if rng.random() < 0.15:
                fields["delaySeconds"] = rng.choice([5, 30])
            api.task(pid, **fields)
        elif action == "lease":
            agent = f"a{rng.randrange(6)}"
            if agent in held:
                continue
            listed = api.get(f"/api/projects/{pid}/tasks?status=queued&limit=1000")
            due = [t for t in listed.get_json()["data"]
                   if t["runAfter"] is None or t["runAfter"] <= rfc3339(clock.now)]
            expected = max(due, key=lambda t: t["priority"], default=None)  # first of the best
            task = lease(api, pid, agent)
            assert (task and task["id"]) == (expected and expected["id"]), step
            if task is not None:
                held[agent] = task["id"]
        elif action == "settle" and held:
            agent = rng.choice(sorted(held))
            outcome = rng.choice(["complete", "fail"])
            body = {"agentName": agent, "error": "x"} if outcome == "fail" else \
                {"agentName": agent}
            api.post(f"/api/tasks/{held.pop(agent)}/{outcome}", body)
        elif action == "reprioritise":
            listed = api.get(f"/api/projects/{pid}/tasks?status=queued&limit=1000")
            queued = listed.get_json()["data"]
            if queued:
                api.put(f"/api/tasks/{rng.choice(queued)['id']}",
                        {"priority": rng.choice([-1, 0, 2])})
        elif action == "wait":
            clock.advance(rng.choice([1, 10]))
