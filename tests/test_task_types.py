"""Task types: templates, variables, defaults, uniqueness, updates and deletion."""

from __future__ import annotations

from conftest import ALL_BACKENDS, Api

BACKENDS = ALL_BACKENDS

TEMPLATE = ("Analyze {{repository_url}} for security vulnerabilities focusing on "
            "{{ security_aspects }}")


def test_create_like_the_seed(api: Api, project: dict) -> None:
    body = {"name": "code-security-analysis", "template": TEMPLATE,
            "variables": ["repository_url", "security_aspects"], "duplicateHandling": "ignore",
            "maxRetries": 3, "leaseDurationMinutes": 30}
    response = api.post(f"/api/projects/{project['id']}/task-types", body)
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert {k: data[k] for k in body} == body
    assert data["projectId"] == project["id"]
    assert api.get(f"/api/task-types/{data['id']}").get_json()["data"] == data


def test_variables_default_to_placeholders_and_defaults_come_from_project(api: Api) -> None:
    project = api.project("p", config={"defaultMaxRetries": 5,
                                       "defaultLeaseDurationMinutes": 2})
    data = api.task_type(project["id"], template=TEMPLATE + " {{repository_url}}")
    assert data["variables"] == ["repository_url", "security_aspects"]
    assert data["duplicateHandling"] == "allow"
    assert data["maxRetries"] == 5 and data["leaseDurationMinutes"] == 2
    plain = api.task_type(project["id"], name="plain")
    assert plain["template"] is None and plain["variables"] == []


def test_undeclared_placeholder_is_422(api: Api, project: dict) -> None:
    response = api.post(f"/api/projects/{project['id']}/task-types",
                        {"name": "t", "template": TEMPLATE, "variables": ["repository_url"]})
    assert response.status_code == 422
    detail = response.get_json()["validationDetails"][0]
    assert detail["field"] == "template" and "security_aspects" in detail["message"]


def test_validation(api: Api, project: dict) -> None:
    path = f"/api/projects/{project['id']}/task-types"
    for body in ({}, {"name": ""}, {"name": "t", "duplicateHandling": "merge"},
                 {"name": "t", "maxRetries": 101}, {"name": "t", "leaseDurationMinutes": 0},
                 {"name": "t", "variables": ["bad name"]}, {"name": "t", "variables": "x"}):
        assert api.post(path, body).status_code == 422, body


def test_names_unique_per_project(api: Api, project: dict) -> None:
    api.task_type(project["id"], name="same")
    assert api.post(f"/api/projects/{project['id']}/task-types",
                    {"name": "same"}).status_code == 409
    other = api.project("other")
    assert api.post(f"/api/projects/{other['id']}/task-types",
                    {"name": "same"}).status_code == 201


def test_list_oldest_first(api: Api, project: dict) -> None:
    names = ["a", "c", "b"]
    for name in names:
        api.task_type(project["id"], name=name)
    listed = api.get(f"/api/projects/{project['id']}/task-types").get_json()["data"]
    assert [t["name"] for t in listed] == names
    assert api.get("/api/projects/00000000-0000-4000-8000-000000000000/task-types"
                   ).status_code == 404


def test_list_pages_like_every_other_list(api: Api, project: dict) -> None:
    for name in ("a", "b", "c"):
        api.task_type(project["id"], name=name)
    body = api.get(f"/api/projects/{project['id']}/task-types?limit=2&offset=1").get_json()
    assert [t["name"] for t in body["data"]] == ["b", "c"]
    assert body["pagination"] == {"total": 3, "limit": 2, "offset": 1}
    for query in ("limit=0", "limit=1001", "offset=-1", "limit=x"):
        response = api.get(f"/api/projects/{project['id']}/task-types?{query}")
        assert response.status_code == 422, query


def test_update(api: Api, project: dict) -> None:
    data = api.task_type(project["id"], template="Hi {{name}}")
    response = api.put(f"/api/task-types/{data['id']}",
                       {"template": "Hi {{name}} from {{place}}", "maxRetries": 5})
    assert response.status_code == 200
    updated = response.get_json()["data"]
    assert updated["variables"] == ["name", "place"] and updated["maxRetries"] == 5
    bad = api.put(f"/api/task-types/{data['id']}", {"template": "{{x}}", "variables": ["y"]})
    assert bad.status_code == 422
    api.task_type(project["id"], name="taken")
    assert api.put(f"/api/task-types/{data['id']}", {"name": "taken"}).status_code == 409
    assert api.get(f"/api/task-types/{data['id']}").get_json()["data"] == updated


def test_delete_refused_while_tasks_use_it(api: Api, project: dict) -> None:
    task_type = api.task_type(project["id"])
    task = api.task(project["id"], typeId=task_type["id"])
    assert api.delete(f"/api/task-types/{task_type['id']}").status_code == 409
    api.delete(f"/api/tasks/{task['id']}")
    response = api.delete(f"/api/task-types/{task_type['id']}")
    assert response.status_code == 200
    assert response.get_json()["data"] == {"id": task_type["id"], "deleted": True}
    assert api.get(f"/api/task-types/{task_type['id']}").status_code == 404
