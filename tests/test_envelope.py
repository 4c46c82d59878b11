"""The error envelope, status codes and headers on every kind of route."""

from __future__ import annotations

import re
import uuid

from flask import Flask

from conftest import Api, make_app

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"]
    assert RFC3339_Z.match(body["timestamp"])
    assert body["correlationId"] == response.headers["X-Correlation-ID"]
    return body


def test_unknown_route_and_method_get_envelope(api: Api) -> None:
    assert_error(api.get("/api/nothing-here"), 404)
    assert_error(api.get("/not-api-either"), 404)
    body = assert_error(api.call("PATCH", "/api/projects"), 405)
    assert "Method not allowed" in body["error"]


def test_non_uuid_path_id_is_404_without_touching_storage(api: Api, project: dict) -> None:
    for path in ("/api/projects/not-a-uuid", "/api/tasks/123", "/api/task-types/../etc",
                 "/api/projects/../../etc/passwd/stats"):
        assert_error(api.get(path), 404)
    assert_error(api.get(f"/api/projects/{uuid.uuid4()}"), 404)


def test_malformed_json_and_non_object_bodies_are_400(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    assert "Malformed" in assert_error(
        api.call("POST", "/api/projects", data="{nope", headers=headers), 400)["error"]
    for body in ("[1, 2]", '"text"', "42", "null"):
        response = api.call("POST", "/api/projects", data=body, headers=headers)
        assert_error(response, 400)
    response = api.call("POST", "/api/projects", data="name=x",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert "application/json" in assert_error(response, 400)["error"]


def test_seed_validation_example_comes_back_in_its_shape(api: Api) -> None:
    body = assert_error(api.post("/api/projects", {"name": "invalid name!"}), 422)
    message = "Project name can only contain letters, numbers, hyphens, and underscores"
    assert body["error"] == f"Validation failed: name: {message}"
    assert body["validationDetails"] == [
        {"field": "name", "message": message, "value": "invalid name!"}]


def test_several_validation_errors_are_all_reported(api: Api) -> None:
    body = assert_error(api.post("/api/projects", {
        "name": "", "config": {"defaultMaxRetries": 101}}), 422)
    fields = {d["field"] for d in body["validationDetails"]}
    assert fields == {"name", "config.defaultMaxRetries"}
    assert body["error"].startswith("Validation failed: ")
    assert "; " in body["error"]


def test_query_parameters_are_validated_with_422(api: Api) -> None:
    body = assert_error(api.get("/api/projects?limit=0"), 422)
    assert body["validationDetails"][0]["field"] == "limit"
    assert body["validationDetails"][0]["value"] == "0"
    assert_error(api.get("/api/projects?status=sleeping"), 422)
    assert_error(api.get("/api/projects?offset=-1"), 422)


def test_unknown_body_fields_are_refused(api: Api) -> None:
    body = assert_error(api.post("/api/projects", {"name": "ok", "colour": "red"}), 422)
    assert body["validationDetails"][0]["field"] == "colour"


def test_oversized_body_is_413(tmp_path) -> None:
    app = make_app(tmp_path / "data", TASKDRIVER_MAX_BODY_BYTES="1000")
    api = Api(app.test_client())
    assert_error(api.post("/api/projects", {"name": "x", "description": "d" * 2000}), 413)
    assert api.post("/api/projects", {"name": "small"}).status_code == 201
    from conftest import close_app
    close_app(app)


def test_unhandled_exception_is_500_without_internals(app: Flask, api: Api) -> None:
    def explode() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    app.add_url_rule("/api/explode", "explode", explode)
    response = api.get("/api/explode")
    body = assert_error(response, 500)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-XSS-Protection"] == "1; mode=block"
    text = response.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert body["error"] == "Internal server error"


def test_security_headers_and_correlation_id_on_success_and_error(api: Api) -> None:
    for response in (api.get("/health"), api.get("/api/nowhere"),
                     api.get("/api/projects")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-XSS-Protection"] == "1; mode=block"
        assert "Strict-Transport-Security" not in response.headers
        uuid.UUID(response.headers["X-Correlation-ID"])
    sent = api.get("/api/projects", headers={"X-Correlation-ID": "req-123.abc_D"})
    assert sent.headers["X-Correlation-ID"] == "req-123.abc_D"
    bad = api.get("/api/nowhere", headers={"X-Correlation-ID": "bad id with spaces"})
    assert bad.headers["X-Correlation-ID"] != "bad id with spaces"
    assert bad.get_json()["correlationId"] == bad.headers["X-Correlation-ID"]


def test_hsts_only_on_https(api: Api) -> None:
    response = api.get("/health", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_hsts_through_a_trusted_proxy(tmp_path) -> None:
    from conftest import close_app
    app = make_app(tmp_path / "data", TASKDRIVER_TRUSTED_PROXIES="1")
    client = app.test_client()
    response = client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in response.headers
    close_app(app)
    untrusted = make_app(tmp_path / "data2")
    response = untrusted.test_client().get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers
    close_app(untrusted)


def test_bodies_no_backend_can_store_are_422_not_500(api: Api) -> None:
    project = api.project("demo")
    task = api.task(project["id"])
    api.next_task("w", project["id"])
    headers = {"Content-Type": "application/json"}
    cases = {
        '{"name": "x", "description": "\\ud800"}': ("description", "surrogates"),
        '{"name": "x", "description": "a\\u0000b"}': ("description", "NUL"),
        '{"name": "x", "config": {"defaultMaxRetries": 1e999}}':
            ("config.defaultMaxRetries", "finite"),
        '{"name": "x", "config": {"a": [1, {"b": "\\u0000"}]}}': ("config.a.1.b", "NUL"),
        '{"name": "x", "config": {"\\udc00": 1}}': ("config", "surrogates"),
    }
    for body, (field, words) in cases.items():
        response = api.call("POST", "/api/projects", data=body, headers=headers)
        assert response.status_code == 422, body
        detail = response.get_json()["validationDetails"][0]
        assert detail["field"] == field and words in detail["message"]
    complete = f"/api/tasks/{task['id']}/complete"
    too_big = api.call("POST", complete, headers=headers,
                       data='{"agentName": "w", "outputs": {"n": 123456789012345678901234567}}')
    assert too_big.status_code == 422
    assert too_big.get_json()["validationDetails"][0]["field"] == "outputs.n"
    deep = '{"agentName": "w", "outputs": ' + "[" * 100 + "]" * 100 + "}"
    assert api.call("POST", complete, data=deep, headers=headers).status_code == 422
    # nothing of the refused completions was kept, and the task can still be completed
    assert api.get(f"/api/tasks/{task['id']}").get_json()["data"]["status"] == "running"
    done = api.post(complete, {"agentName": "w", "outputs": {"n": 2**63}})
    assert done.status_code == 200 and done.get_json()["data"]["outputs"] == {"n": 2**63}


def test_json_nested_past_the_parsers_depth_is_422_not_500(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    for depth in (65, 900, 1000, 100_000):
        body = "[" * depth + "]" * depth
        for caller, path in ((api.as_token(None), "/api/auth/login"), (api, "/api/projects")):
            response = caller.call("POST", path, data=body, headers=headers)
            assert response.status_code in (400, 422), (depth, path)
            assert response.get_json()["success"] is False
        wrapped = '{"name": "x", "description": ' + body + "}"
        assert_error(api.call("POST", "/api/projects", data=wrapped, headers=headers), 422)


def test_integer_fields_take_json_integers_only(api: Api) -> None:
    project = api.project("ints")
    refused = (2.7, 1e-300, 2.0, " 4 ", "4", True, None)
    for value in refused:
        response = api.post(f"/api/projects/{project['id']}/task-types",
                            {"name": "t", "maxRetries": value})
        body = assert_error(response, 422)
        assert body["validationDetails"][0]["field"] == "maxRetries", value
        response = api.post("/api/projects", {"name": "p", "config": {
            "defaultMaxRetries": value}})
        assert assert_error(response, 422)["validationDetails"][0]["field"] == \
            "config.defaultMaxRetries"
    for value in (" 4 ", "4", True):
        response = api.post("/api/projects", {"name": "p", "config": {
            "defaultLeaseDurationMinutes": value}})
        assert assert_error(response, 422)["validationDetails"][0]["field"] == \
            "config.defaultLeaseDurationMinutes", value
    login = api.as_token(None).post("/api/auth/login", {"agentName": "a",
                                                        "projectId": project["id"]})
    agent = api.as_token(login.get_json()["data"]["token"])
    assert_error(agent.put("/api/auth/session", {"extendBy": 60.5}), 422)
    assert api.post(f"/api/projects/{project['id']}/task-types",
                    {"name": "t", "maxRetries": 4}).get_json()["data"]["maxRetries"] == 4
