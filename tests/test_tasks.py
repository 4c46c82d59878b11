"""Tasks: creation with templates and duplicates, bulk, list filters, update, delete."""

from __future__ import annotations

from conftest import ALL_BACKENDS, Api

BACKENDS = ALL_BACKENDS

TEMPLATE = "Analyze {{repository_url}} focusing on {{security_aspects}}"
VARIABLES = {"repository_url": "https://github.com/company/webapp",
             "security_aspects": "authentication,authorization"}


def test_create_like_the_seed(api: Api, project: dict) -> None:
    task_type = api.task_type(project["id"], template=TEMPLATE)
    body = {"typeId": task_type["id"],
            "instructions": "Analyze security vulnerabilities in authentication system",
            "variables": VARIABLES, "batchId": "batch-security-audit-2024"}
    response = api.post(f"/api/projects/{project['id']}/tasks", body)
    assert response.status_code == 201
    task = response.get_json()["data"]
    assert task["instructions"] == (
        "Analyze https://github.com/company/webapp focusing on authentication,authorization"
        "\n\nAnalyze security vulnerabilities in authentication system")
    assert task["variables"] == VARIABLES and task["batchId"] == body["batchId"]
    assert task["status"] == "queued" and task["retryCount"] == 0 and task["maxRetries"] == 3
    assert task["attempts"] == [] and task["assignedTo"] is None
    assert task["completedAt"] is None and task["result"] is None
    read = api.get(f"/api/tasks/{task['id']}").get_json()["data"]
    assert read == {**task, "dependencies": [], "dependencyBatch": None, "dependents": []}


def test_template_only_and_plain_tasks(api: Api, project: dict) -> None:
    task_type = api.task_type(project["id"], template=TEMPLATE, maxRetries=7)
    task = api.task(project["id"], typeId=task_type["id"], variables=VARIABLES,
                    instructions=None)
    assert task["instructions"].startswith("Analyze https://") and "\n" not in \
        task["instructions"]
    assert task["maxRetries"] == 7
    plain = api.task(project["id"], instructions="just do it")
    assert plain["typeId"] is None and plain["instructions"] == "just do it"
    missing = api.post(f"/api/projects/{project['id']}/tasks", {})
    assert missing.status_code == 422
    assert missing.get_json()["validationDetails"][0]["field"] == "instructions"


def test_variables_must_match_the_type(api: Api, project: dict) -> None:
    task_type = api.task_type(project["id"], template=TEMPLATE)
    path = f"/api/projects/{project['id']}/tasks"
    missing = api.post(path, {"typeId": task_type["id"],
                              "variables": {"repository_url": "u"}})
    assert missing.status_code == 422
    assert missing.get_json()["validationDetails"][0]["field"] == "variables.security_aspects"
    extra = api.post(path, {"typeId": task_type["id"],
                            "variables": {**VARIABLES, "colour": "red"}})
    assert extra.status_code == 422
    assert "colour" in extra.get_json()["error"]
    not_strings = api.post(path, {"typeId": task_type["id"],
                                  "variables": {**VARIABLES, "security_aspects": 3}})
    assert not_strings.status_code == 422
    unknown_type = api.post(path, {"typeId": "00000000-0000-4000-8000-000000000000",
                                   "variables": VARIABLES})
    assert unknown_type.status_code == 422
    assert api.post(path, {"typeId": "nope", "instructions": "x"}).status_code == 422


def test_duplicate_handling(api: Api, project: dict) -> None:
    path = f"/api/projects/{project['id']}/tasks"
    for handling, second_status in (("allow", 201), ("ignore", 200), ("fail", 409)):
        task_type = api.task_type(project["id"], name=handling, template=TEMPLATE,
                                  duplicateHandling=handling)
        body = {"typeId": task_type["id"], "variables": VARIABLES}
        first = api.post(path, body)
        assert first.status_code == 201
        second = api.post(path, body)
        assert second.status_code == second_status, handling
        if handling == "ignore":
            assert second.get_json()["data"]["id"] == first.get_json()["data"]["id"]
        other = api.post(path, {**body, "variables": {**VARIABLES, "repository_url": "x"}})
        assert other.status_code == 201


def test_a_failed_task_is_no_longer_a_duplicate(api: Api, project: dict) -> None:
    task_type = api.task_type(project["id"], template=TEMPLATE, duplicateHandling="fail",
                              maxRetries=0)
    body = {"typeId": task_type["id"], "variables": VARIABLES}
    first = api.post(f"/api/projects/{project['id']}/tasks", body).get_json()["data"]
    api.next_task("w1", project["id"])
    api.post(f"/api/tasks/{first['id']}/fail", {"agentName": "w1", "error": "boom"})
    assert api.post(f"/api/projects/{project['id']}/tasks", body).status_code == 201


def test_bulk_creates_each_item_on_its_own(api: Api, project: dict) -> None:
    task_type = api.task_type(project["id"], template="Analyze {{module}}",
                              duplicateHandling="ignore")
    strict = api.task_type(project["id"], name="strict", template="Do {{module}}",
                           duplicateHandling="fail")
    api.task(project["id"], typeId=strict["id"], variables={"module": "x"})
    items = [
        {"typeId": task_type["id"], "instructions": "Analyze module A",
         "variables": {"module": "authentication"}},
        {"typeId": task_type["id"], "instructions": "Analyze module B",
         "variables": {"module": "authorization"}, "batchId": "own"},
        {"typeId": task_type["id"], "variables": {"module": "authentication"}},  # duplicate
        {"instructions": 42},  # invalid
        {"typeId": strict["id"], "variables": {"module": "x"}},  # duplicate under fail
        {"typeId": task_type["id"], "variables": {}},  # missing variable
        {"instructions": "x", "delaySeconds": 5,  # a rule across fields
         "runAfter": "2030-01-01T00:00:00Z"},
        {"instructions": "x", "colour": "red"},  # a field no task has
    ]
    response = api.post(f"/api/projects/{project['id']}/tasks/bulk",
                        {"tasks": items, "batchId": "batch-security-audit-2024"})
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["tasksCreated"] == 2 and data["duplicates"] == 1
    assert [e["index"] for e in data["errors"]] == [3, 4, 5, 6, 7]
    assert data["errors"][0]["validationDetails"][0]["field"] == "instructions"
    assert "Duplicate" in data["errors"][1]["error"]
    assert data["errors"][2]["validationDetails"][0]["field"] == "variables.module"
    assert data["errors"][3]["validationDetails"][0]["field"] == "delaySeconds"
    assert data["errors"][4]["validationDetails"][0]["field"] == "colour"
    created = data["createdTasks"]
    assert [t["batchId"] for t in created] == ["batch-security-audit-2024", "own"]
    listed = api.get(f"/api/projects/{project['id']}/tasks?batchId=own").get_json()["data"]
    assert [t["id"] for t in listed] == [created[1]["id"]]


def test_bulk_checks_rules_across_fields_with_or_without_other_bad_items(
        api: Api, project: dict) -> None:
    both = {"instructions": "x", "delaySeconds": 5, "runAfter": "2030-01-01T00:00:00Z"}
    path = f"/api/projects/{project['id']}/tasks/bulk"
    for items, refused in (([both, {"instructions": "ok"}], [0]),
                           ([both, {"instructions": 1}, {"instructions": "ok"}], [0, 1])):
        data = api.post(path, {"tasks": items}).get_json()["data"]
        assert [e["index"] for e in data["errors"]] == refused
        assert data["errors"][0]["validationDetails"][0]["field"] == "delaySeconds"
        assert data["tasksCreated"] == 1


def test_bulk_body_must_be_a_list_of_1_to_1000(api: Api, project: dict) -> None:
    path = f"/api/projects/{project['id']}/tasks/bulk"
    for body in ({}, {"tasks": []}, {"tasks": "x"}, {"tasks": [1]},
                 {"tasks": [{"instructions": "x"}] * 1001}):
        assert api.post(path, body).status_code == 422, str(body)[:40]
    ok = api.post(path, {"tasks": [{"instructions": str(i)} for i in range(1000)]})
    assert ok.get_json()["data"]["tasksCreated"] == 1000


def test_list_filters_and_pages_oldest_first(api: Api, project: dict) -> None:
    task_type = api.task_type(project["id"])
    ids = [api.task(project["id"], batchId="b" if i % 2 else None,
                    typeId=task_type["id"] if i < 3 else None)["id"] for i in range(6)]
    path = f"/api/projects/{project['id']}/tasks"
    page = api.get(path).get_json()
    assert [t["id"] for t in page["data"]] == ids
    assert page["pagination"] == {"total": 6, "limit": 100, "offset": 0}
    assert [t["id"] for t in api.get(f"{path}?batchId=b").get_json()["data"]] == ids[1::2]
    by_type = api.get(f"{path}?typeId={task_type['id']}").get_json()["data"]
    assert [t["id"] for t in by_type] == ids[:3]
    api.next_task("w1", project["id"])
    running = api.get(f"{path}?status=running&assignedTo=w1").get_json()
    assert [t["id"] for t in running["data"]] == ids[:1]
    assert running["pagination"]["total"] == 1
    queued = api.get(f"{path}?status=queued&limit=2&offset=1").get_json()
    assert [t["id"] for t in queued["data"]] == ids[2:4]
    assert queued["pagination"] == {"total": 5, "limit": 2, "offset": 1}
    for bad in ("status=done", "limit=0", "limit=1001", "typeId=nope", "offset=-3"):
        assert api.get(f"{path}?{bad}").status_code == 422, bad


def test_update_only_while_queued(api: Api, project: dict) -> None:
    task_type = api.task_type(project["id"], template="Hi {{who}}")
    task = api.task(project["id"], typeId=task_type["id"], variables={"who": "a"},
                    instructions=None)
    response = api.put(f"/api/tasks/{task['id']}", {"variables": {"who": "b"},
                                                    "batchId": "late"})
    assert response.status_code == 200
    updated = response.get_json()["data"]
    assert updated["instructions"] == "Hi b" and updated["batchId"] == "late"
    assert api.put(f"/api/tasks/{task['id']}", {"variables": {"x": "b"}}).status_code == 422
    plain = api.task(project["id"])
    assert api.put(f"/api/tasks/{plain['id']}", {"instructions": "new"}).get_json()[
        "data"]["instructions"] == "new"
    api.next_task("w1", project["id"])
    assert api.put(f"/api/tasks/{task['id']}", {"instructions": "x"}).status_code == 409


def test_delete_unless_running(api: Api, project: dict) -> None:
    first, second = api.task(project["id"]), api.task(project["id"])
    api.next_task("w1", project["id"])
    assert api.delete(f"/api/tasks/{first['id']}").status_code == 409
    assert api.delete(f"/api/tasks/{second['id']}").status_code == 200
    assert api.get(f"/api/tasks/{second['id']}").status_code == 404


def test_closed_project_refuses_new_tasks(api: Api, project: dict) -> None:
    api.put(f"/api/projects/{project['id']}", {"status": "closed"})
    assert api.post(f"/api/projects/{project['id']}/tasks",
                    {"instructions": "x"}).status_code == 409
    assert api.next_task("w1", project["id"]).status_code == 409


def test_batch_progress(api: Api, project: dict) -> None:
    for _ in range(2):
        api.task(project["id"], batchId="nightly")
    path = f"/api/projects/{project['id']}/batches/nightly"
    assert api.get(path).get_json()["data"] == {
        "batchId": "nightly", "total": 2, "queued": 2, "running": 0, "completed": 0,
        "failed": 0, "cancelled": 0, "waiting": 0, "done": False}
    for _ in range(2):
        task = api.next_task("w1", project["id"]).get_json()["data"]["task"]
        api.post(f"/api/tasks/{task['id']}/complete", {"agentName": "w1"})
    data = api.get(path).get_json()["data"]
    assert data["completed"] == 2 and data["done"] is True
    assert api.get(f"/api/projects/{project['id']}/batches/unknown").status_code == 404


def test_a_task_may_carry_a_description_for_people(api: Api, project: dict) -> None:
    task = api.task(project["id"], instructions="do", description="Nightly audit of repo a")
    assert task["description"] == "Nightly audit of repo a"
    assert api.task(project["id"])["description"] is None
    changed = api.put(f"/api/tasks/{task['id']}", {"description": None}).get_json()["data"]
    assert changed["description"] is None and changed["instructions"] == "do"
    bulk = api.post(f"/api/projects/{project['id']}/tasks/bulk", {"tasks": [
        {"instructions": "x", "description": "first"}]}).get_json()["data"]
    assert bulk["createdTasks"][0]["description"] == "first"


def test_batches_are_listed_with_their_progress(api: Api, project: dict) -> None:
    for batch, count in (("b1", 2), ("b2", 1)):
        api.post(f"/api/projects/{project['id']}/tasks/bulk",
                 {"batchId": batch, "tasks": [{"instructions": "x"}] * count})
    api.task(project["id"])  # no batch
    body = api.get(f"/api/projects/{project['id']}/batches").get_json()
    assert [(b["batchId"], b["total"], b["queued"], b["done"]) for b in body["data"]] == [
        ("b1", 2, 2, False), ("b2", 1, 1, False)]
    assert body["pagination"] == {"total": 2, "limit": 100, "offset": 0}
    one = api.get(f"/api/projects/{project['id']}/batches?limit=1&offset=1").get_json()
    assert [b["batchId"] for b in one["data"]] == ["b2"]


def test_failed_tasks_are_retried_in_bulk_by_batch_and_by_type(api: Api, project: dict
                                                               ) -> None:
    pid = project["id"]
    api.put(f"/api/projects/{pid}", {"config": {"defaultMaxRetries": 0}})
    kind = api.task_type(pid, "kind")
    api.post(f"/api/projects/{pid}/tasks/bulk", {"batchId": "b1", "tasks": [
        {"instructions": "x"}, {"instructions": "y"}]})
    api.post(f"/api/projects/{pid}/tasks/bulk", {"batchId": "b2", "tasks": [
        {"typeId": kind["id"], "instructions": "z"}]})
    for _ in range(3):
        task = api.next_task("w", pid).get_json()["data"]["task"]
        api.post(f"/api/tasks/{task['id']}/fail", {"agentName": "w", "error": "boom"})
    path = f"/api/projects/{pid}/tasks/retry"
    assert api.post(path, {"batchId": "b1"}).get_json()["data"] == {"retried": 2}
    assert api.post(path, {"typeId": kind["id"]}).get_json()["data"] == {"retried": 1}
    assert api.post(path).get_json()["data"] == {"retried": 0}
    counts = api.get(f"/api/projects/{pid}").get_json()["data"]["stats"]
    assert counts["queuedTasks"] == 3 and counts["failedTasks"] == 0
    agent = api.login("w2", pid)
    refused = agent.post(path, {"batchId": "b1"})
    assert refused.status_code == 403


def test_throughput_counts_outcomes_per_interval(app, api: Api, project: dict, clock) -> None:
    pid = project["id"]
    for outcome in ("complete", "fail", "complete"):
        api.task(pid)
        task = api.next_task("w", pid).get_json()["data"]["task"]
        body = {"agentName": "w"} if outcome == "complete" else {
            "agentName": "w", "error": "x", "canRetry": False}
        api.post(f"/api/tasks/{task['id']}/{outcome}", body)
        clock.advance(1800)
    from taskdriver.extension import services
    from taskdriver.models import OPERATOR
    with app.app_context():
        chart = services().driver.throughput(OPERATOR, pid, hours=2, bucket_minutes=30)
    assert chart.completed == [0, 1, 0, 1] and chart.failed == [0, 0, 1, 0]


def test_page_offsets_stop_at_64_bits(api: Api, project: dict) -> None:
    """Found by the fuzz: an offset past 64 bits was a 500 (slicing refused it, and so did
    the JSON writer echoing it in `pagination`). The largest is an empty page; past it, 422."""
    path = f"/api/projects/{project['id']}/tasks"
    api.task(project["id"], instructions="one")
    for filters in ("", "&batchId=b1", "&status=queued"):
        for limit in (1, 1000):
            largest = api.get(f"{path}?offset={2**63 - 1}&limit={limit}{filters}")
            assert largest.status_code == 200, largest.get_json()
            assert largest.get_json()["data"] == []
            assert largest.get_json()["pagination"]["offset"] == 2**63 - 1
    for listing in ("/api/projects", f"/api/projects/{project['id']}/task-types",
                    f"/api/projects/{project['id']}/batches"):
        assert api.get(f"{listing}?offset={2**63 - 1}").get_json()["data"] == []
    past = api.get(f"{path}?offset={2**100}")
    assert past.status_code == 422
    assert past.get_json()["validationDetails"][0]["field"] == "offset"
