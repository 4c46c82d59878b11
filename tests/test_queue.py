"""The lease queue: assignment, resume, outcomes, retries, expiry, reaping and stats."""

from __future__ import annotations

import threading
import time

from conftest import ALL_BACKENDS, Api, Clock

BACKENDS = ALL_BACKENDS


def lease(api: Api, agent: str, project_id: str | None = None) -> dict:
    response = api.next_task(agent, project_id)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True, body
    return body["data"]["task"]


def test_next_task_like_the_seed(api: Api, project: dict, clock: Clock) -> None:
    task_type = api.task_type(project["id"], template="Check {{repository_url}}",
                              leaseDurationMinutes=30)
    created = api.task(project["id"], typeId=task_type["id"],
                       variables={"repository_url": "https://x"}, instructions=None)
    response = api.next_task("security-analysis-agent", project["id"])
    body = response.get_json()
    assert body["success"] is True
    assert body["data"]["agentName"] == "security-analysis-agent"
    task = body["data"]["task"]
    assert task["id"] == created["id"] and task["status"] == "running"
    assert task["assignedTo"] == "security-analysis-agent"
    assert task["assignedAt"] and task["leaseExpiresAt"] > task["assignedAt"]
    assert len(task["attempts"]) == 1 and task["attempts"][0]["status"] == "running"


def test_no_task_body_is_the_seeds(api: Api, project: dict) -> None:
    response = api.next_task("idle-agent", project["id"])
    assert response.status_code == 200
    assert response.get_json() == {"success": False,
                                   "error": "No tasks available for assignment",
                                   "data": {"task": None, "agentName": "idle-agent"}}


def test_fifo_and_one_task_per_agent(api: Api, project: dict) -> None:
    ids = [api.task(project["id"], instructions=str(i))["id"] for i in range(4)]
    assert lease(api, "a", project["id"])["id"] == ids[0]
    assert lease(api, "b", project["id"])["id"] == ids[1]
    assert lease(api, "a", project["id"])["id"] == ids[0]  # a holds one: resumed
    assert lease(api, "c", project["id"])["id"] == ids[2]


def test_agent_resumes_its_task_after_reconnecting(api: Api, project: dict) -> None:
    api.task(project["id"])
    first_session = api.login("worker-7", "demo")
    task = lease(first_session, "worker-7")
    first_session.post("/api/auth/logout")
    second_session = api.login("worker-7", project["id"])
    resumed = lease(second_session, "worker-7")
    assert resumed["id"] == task["id"] and len(resumed["attempts"]) == 1


def test_agent_session_may_omit_project_and_operator_may_not(api: Api, project: dict) -> None:
    api.task(project["id"])
    agent = api.login("w", "demo")
    assert lease(agent, "w")["assignedTo"] == "w"
    response = api.next_task("w")
    assert response.status_code == 422
    assert api.next_task("bad name", project["id"]).status_code == 422


def test_complete_like_the_seed_clients(api: Api, project: dict) -> None:
    api.task(project["id"])
    agent = api.login("my-agent", "demo")
    task = lease(agent, "my-agent", "demo")  # the seed passes the project by name
    outputs = {"vulnerabilities_found": 8, "report_url": "https://reports.example.com/1"}
    response = agent.post(f"/api/tasks/{task['id']}/complete",
                          {"result": "Task completed successfully", "outputs": outputs})
    assert response.status_code == 200
    done = response.get_json()["data"]
    assert done["status"] == "completed" and done["result"] == "Task completed successfully"
    assert done["outputs"] == outputs and done["completedAt"] and done["leaseExpiresAt"] is None
    assert done["attempts"][0]["status"] == "completed" and done["attempts"][0]["endedAt"]
    again = agent.post(f"/api/tasks/{task['id']}/complete", {"result": "again"})
    assert again.status_code == 200 and again.get_json()["data"] == done  # idempotent
    other = api.login("someone-else", "demo")
    assert other.post(f"/api/tasks/{task['id']}/complete", {}).status_code == 409


def test_only_the_holder_settles_a_task(api: Api, project: dict) -> None:
    task = api.task(project["id"])
    holder, other = api.login("holder", "demo"), api.login("other", "demo")
    assert other.post(f"/api/tasks/{task['id']}/complete", {}).status_code == 409  # queued
    lease(holder, "holder")
    for action, body in (("complete", {}), ("fail", {"error": "x"}),
                         ("extend-lease", {"extensionMinutes": 5})):
        assert other.post(f"/api/tasks/{task['id']}/{action}", body).status_code == 409
        assert other.post(f"/api/tasks/{task['id']}/{action}",
                          {**body, "agentName": "holder"}).status_code == 403
    assert api.post(f"/api/tasks/{task['id']}/complete",
                    {"agentName": "other"}).status_code == 409


def test_fail_retries_then_fails(api: Api, project: dict) -> None:
    api.task_type(project["id"], name="t", maxRetries=2)
    type_id = api.get(f"/api/projects/{project['id']}/task-types").get_json()["data"][0]["id"]
    task = api.task(project["id"], typeId=type_id)
    for retry in (1, 2):
        lease(api, "w", project["id"])
        response = api.post(f"/api/tasks/{task['id']}/fail",
                            {"agentName": "w", "error": "Repository access denied."})
        data = response.get_json()["data"]
        assert data["status"] == "queued" and data["retryCount"] == retry
        assert data["error"] == "Repository access denied." and data["assignedTo"] is None
    lease(api, "w", project["id"])
    data = api.post(f"/api/tasks/{task['id']}/fail",
                    {"agentName": "w", "error": "again"}).get_json()["data"]
    assert data["status"] == "failed" and data["retryCount"] == 2
    assert [a["status"] for a in data["attempts"]] == ["failed"] * 3
    assert api.post(f"/api/tasks/{task['id']}/fail", {"agentName": "w"}).status_code == 422


def test_fail_without_retry_fails_at_once(api: Api, project: dict) -> None:
    task = api.task(project["id"])
    lease(api, "w", project["id"])
    data = api.post(f"/api/tasks/{task['id']}/fail", {
        "agentName": "w", "error": "bad input", "canRetry": False}).get_json()["data"]
    assert data["status"] == "failed" and data["retryCount"] == 0


def test_expired_leases_requeue_then_fail(api: Api, clock: Clock) -> None:
    project = api.project("p", config={"defaultMaxRetries": 1,
                                       "defaultLeaseDurationMinutes": 1})
    task = api.task(project["id"])
    lease(api, "a", project["id"])
    clock.advance(61)
    assert api.get(f"/api/projects/{project['id']}/agents").get_json()["data"] == []
    second = lease(api, "b", project["id"])  # lazy reclaim, then re-lease
    assert second["id"] == task["id"] and second["retryCount"] == 1
    assert [a["status"] for a in second["attempts"]] == ["timeout", "running"]
    assert second["attempts"][0]["agentName"] == "a"
    clock.advance(61)
    assert api.next_task("c", project["id"]).get_json()["success"] is False
    final = api.get(f"/api/tasks/{task['id']}").get_json()["data"]
    assert final["status"] == "failed"
    assert [a["status"] for a in final["attempts"]] == ["timeout", "timeout"]


def test_expired_but_unreclaimed_lease_can_still_complete(api: Api, project: dict,
                                                          clock: Clock) -> None:
    task = api.task(project["id"])
    lease(api, "slow", project["id"])
    clock.advance(11 * 60)
    done = api.post(f"/api/tasks/{task['id']}/complete", {"agentName": "slow"})
    assert done.status_code == 200 and done.get_json()["data"]["status"] == "completed"


def test_completing_after_reclaim_and_relase_is_409(api: Api, project: dict,
                                                    clock: Clock) -> None:
    task = api.task(project["id"])
    lease(api, "slow", project["id"])
    clock.advance(11 * 60)
    assert lease(api, "fast", project["id"])["id"] == task["id"]
    late = api.post(f"/api/tasks/{task['id']}/complete", {"agentName": "slow"})
    assert late.status_code == 409 and "fast" in late.get_json()["error"]
    assert api.next_task("slow", project["id"]).get_json()["success"] is False
    done = api.post(f"/api/tasks/{task['id']}/complete", {"agentName": "fast"})
    assert done.get_json()["data"]["status"] == "completed"


def test_resume_does_not_hand_back_an_expired_lease(api: Api, project: dict,
                                                    clock: Clock) -> None:
    first, second = api.task(project["id"]), api.task(project["id"])
    lease(api, "a", project["id"])
    lease(api, "b", project["id"])
    clock.advance(11 * 60)
    again = lease(api, "a", project["id"])  # reclaims both; a gets the head of the queue
    assert again["id"] == first["id"] and again["retryCount"] == 1
    assert api.get(f"/api/tasks/{second['id']}").get_json()["data"]["status"] == "queued"


def test_extend_lease(api: Api, project: dict, clock: Clock) -> None:
    task = api.task(project["id"])
    leased = lease(api, "w", project["id"])
    response = api.post(f"/api/tasks/{task['id']}/extend-lease",
                        {"agentName": "w", "extensionMinutes": 30})
    assert response.status_code == 200
    extended = response.get_json()["data"]
    assert extended["leaseExpiresAt"] > leased["leaseExpiresAt"]
    clock.advance(35 * 60)  # past the first lease, inside the extension
    assert lease(api, "w", project["id"])["id"] == task["id"]
    for bad in (0, 0.01, 1441, "x"):
        assert api.post(f"/api/tasks/{task['id']}/extend-lease",
                        {"agentName": "w", "extensionMinutes": bad}).status_code == 422
    agent = api.login("w", "demo")
    assert agent.post(f"/api/tasks/{task['id']}/extend-lease",
                      {"extensionMinutes": 1}).status_code == 200  # seed body, no agentName


def test_peek_agents_and_cleanup(api: Api, project: dict, clock: Clock) -> None:
    for _ in range(3):
        api.task(project["id"])
    base = f"/api/projects/{project['id']}"
    assert api.get(f"{base}/peek-next-task").get_json()["data"] == {
        "projectId": project["id"], "tasksAvailable": 3}
    lease(api, "a", project["id"])
    lease(api, "b", project["id"])
    agents = api.get(f"{base}/agents").get_json()["data"]
    assert sorted(a["agentName"] for a in agents) == ["a", "b"]
    assert set(agents[0]) == {"agentName", "taskId", "assignedAt", "leaseExpiresAt", "status"}
    assert agents[0]["status"] == "running"
    assert api.get(f"{base}/peek-next-task").get_json()["data"]["tasksAvailable"] == 1
    clock.advance(11 * 60)
    assert api.get(f"{base}/peek-next-task").get_json()["data"]["tasksAvailable"] == 3
    cleaned = api.post(f"{base}/cleanup-leases").get_json()["data"]
    assert cleaned == {"reclaimedTasks": 2, "cleanedAgents": 2}
    assert api.post(f"{base}/cleanup-leases").get_json()["data"]["reclaimedTasks"] == 0
    assert api.get(f"{base}/agents").get_json()["data"] == []


def test_reaper_cli_reclaims_every_project(app, api: Api, clock: Clock) -> None:
    projects = [api.project(f"p{i}") for i in range(2)]
    for project in projects:
        api.task(project["id"])
        lease(api, "w", project["id"])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["taskdriver", "reap"])
    assert result.exit_code == 0 and "reclaimedTasks=0" in result.output
    clock.advance(11 * 60)
    result = runner.invoke(args=["taskdriver", "reap", "--project", projects[0]["id"]])
    assert "reclaimedTasks=1 cleanedAgents=1" in result.output
    result = runner.invoke(args=["taskdriver", "reap"])
    assert "reclaimedTasks=1 cleanedAgents=1" in result.output


def test_operator_retry_of_a_failed_task(api: Api, project: dict) -> None:
    task = api.task(project["id"])
    lease(api, "w", project["id"])
    api.post(f"/api/tasks/{task['id']}/fail",
             {"agentName": "w", "error": "x", "canRetry": False})
    agent = api.login("w", "demo")
    assert agent.post(f"/api/tasks/{task['id']}/retry").status_code == 403
    response = api.post(f"/api/tasks/{task['id']}/retry")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["status"] == "queued" and data["retryCount"] == 0
    assert api.post(f"/api/tasks/{task['id']}/retry").status_code == 409
    assert lease(api, "w", project["id"])["id"] == task["id"]


def test_stats_add_up(api: Api, project: dict, clock: Clock) -> None:
    ids = [api.task(project["id"])["id"] for _ in range(5)]
    lease(api, "a", project["id"])
    clock.advance(30)
    api.post(f"/api/tasks/{ids[0]}/complete", {"agentName": "a"})
    lease(api, "a", project["id"])
    api.post(f"/api/tasks/{ids[1]}/fail", {"agentName": "a", "error": "x", "canRetry": False})
    lease(api, "b", project["id"])
    stats = api.get(f"/api/projects/{project['id']}/stats").get_json()["data"]
    assert stats["project"]["stats"] == {"totalTasks": 5, "completedTasks": 1,
                                         "failedTasks": 1, "queuedTasks": 2, "runningTasks": 1,
                                         "cancelledTasks": 0, "waitingTasks": 0,
                                         "archivedTasks": 0}
    assert stats["queueDepth"] == 2 and stats["activeAgents"] == 1
    assert stats["recentActivity"] == {"tasksCompletedLastHour": 1, "tasksFailedLastHour": 1,
                                       "averageTaskDuration": 30.0}
    clock.advance(3601)
    recent = api.get(f"/api/projects/{project['id']}/stats").get_json()["data"]
    assert recent["recentActivity"]["tasksCompletedLastHour"] == 0
    assert recent["activeAgents"] == 0


def test_two_agents_never_hold_one_task(app, project: dict) -> None:
    """Threads of one process race for 200 tasks; each is leased exactly once."""
    api = Api(app.test_client())
    api.post(f"/api/projects/{project['id']}/tasks/bulk",
             {"tasks": [{"instructions": str(i)} for i in range(200)]})
    got: dict[str, list[str]] = {}
    lock = threading.Lock()

    def agent(name: str) -> None:
        client = Api(app.test_client())
        while True:
            body = client.next_task(name, project["id"]).get_json()
            if not body["success"]:
                return
            task_id = body["data"]["task"]["id"]
            with lock:
                got.setdefault(task_id, []).append(name)
            client.post(f"/api/tasks/{task_id}/complete", {"agentName": name})

    threads = [threading.Thread(target=agent, args=(f"agent-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 200
    assert all(len(holders) == 1 for holders in got.values())


def test_reaper_cli_drops_expired_sessions_and_refuses_odd_ids(app, api: Api, clock: Clock,
                                                               tmp_path) -> None:
    api.project("demo")
    api.login("short-lived", "demo")
    runner = app.test_cli_runner()
    assert "expiredSessions=0" in runner.invoke(args=["taskdriver", "reap"]).output
    clock.advance(3601)
    assert "expiredSessions=1" in runner.invoke(args=["taskdriver", "reap"]).output
    result = runner.invoke(args=["taskdriver", "reap", "--project", "../../escape"])
    assert result.exit_code == 1 and result.output.strip() == "Error: Project not found"
    assert not (tmp_path / "escape.lock").exists()
    assert not any(p.name.startswith("escape") for p in tmp_path.rglob("*"))


def test_wait_seconds_is_validated_and_a_held_lease_comes_back_at_once(api: Api) -> None:
    project = api.project("waits")
    for bad in (-1, 30.5, "5", True, None):
        response = api.post("/api/agents/w/next-task",
                            {"projectId": project["id"], "waitSeconds": bad})
        assert response.status_code == 422, bad
        assert response.get_json()["validationDetails"][0]["field"] == "waitSeconds"
    task = api.task(project["id"])
    api.next_task("w", project["id"])
    started = time.monotonic()
    again = api.post("/api/agents/w/next-task", {"projectId": project["id"], "waitSeconds": 30})
    assert again.get_json()["data"]["task"]["id"] == task["id"]
    assert time.monotonic() - started < 5  # resumed, not waited for
