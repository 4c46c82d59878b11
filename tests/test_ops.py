"""Health, metrics, rate limits, CORS and the API document, in one process."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from flask import Flask

from conftest import ADMIN_TOKEN, Api, close_app, make_app


def test_health_like_the_seed_plus_version(api: Api) -> None:
    response = api.as_token(None).get("/health")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert set(data) == {"status", "timestamp", "uptime", "version", "storage"}
    assert data["status"] == "healthy" and data["storage"] == {"healthy": True,
                                                               "provider": "file"}
    assert isinstance(data["uptime"], float) and data["version"] == "0.1.0"


def test_health_is_503_when_storage_cannot_be_written(app: Flask, api: Api,
                                                      tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "data")  # the volume went away
    response = api.get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["success"] is False and body["error"] == "Storage is not writable"
    assert body["correlationId"] and body["timestamp"].endswith("Z")
    assert body["data"]["status"] == "unhealthy"
    assert body["data"]["storage"] == {"healthy": False, "provider": "file"}


def test_metrics_json_counts_requests(api: Api, project: dict) -> None:
    api.get("/api/projects")
    api.get("/api/nowhere")
    api.login("agent-1", "demo")
    data = api.as_token(None).get("/metrics/json").get_json()["data"]
    # project fixture's POST, GET, 404, login (the /metrics/json call is counted after)
    assert data["requests_total"] == 4
    assert data["requests_success"] == 3 and data["requests_error"] == 1
    assert data["response_time_avg"] > 0
    assert data["active_sessions"] == 1
    assert set(data["system"]) == {"memory_usage", "cpu_usage", "uptime"}
    assert data["system"]["memory_usage"] > 1


def test_prometheus_metrics(api: Api, project: dict) -> None:
    api.post(f"/api/projects/{project['id']}/tasks/bulk",
             {"tasks": [{"instructions": str(i)} for i in range(3)]})
    task = api.next_task("w", project["id"]).get_json()["data"]["task"]
    api.post(f"/api/tasks/{task['id']}/complete", {"agentName": "w"})
    text = api.as_token(None).get("/metrics").get_data(as_text=True)
    pid = project["id"]
    assert f'taskdriver_tasks{{project="{pid}",project_name="demo",status="queued"}} 2.0' \
        in text
    assert f'taskdriver_tasks{{project="{pid}",project_name="demo",status="completed"}} 1.0' \
        in text
    assert f'taskdriver_tasks_created_total{{project="{pid}"}} 3.0' in text
    assert f'taskdriver_tasks_completed_total{{project="{pid}"}} 1.0' in text
    route = '/api/projects/<uuid:project_id>/tasks/bulk'
    assert (f'taskdriver_http_request_duration_seconds_count{{method="POST",'
            f'route="{route}",status="201"}} 1.0') in text
    assert "taskdriver_active_sessions 0.0" in text
    assert "/metrics" not in text.split("route=")[-1]  # scrapes are not counted


def test_rate_limit_the_101st_request(tmp_path: Path) -> None:
    app = make_app(tmp_path / "data", TASKDRIVER_RATE_LIMIT="100 per 15 minutes")
    api = Api(app.test_client())
    for _ in range(100):
        response = api.get("/api/projects")
        assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "100"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) > 0
    limited = api.post("/api/projects", {"name": "late"})
    assert limited.status_code == 429
    body = limited.get_json()
    assert body["success"] is False and "100 per 15 minute" in body["error"]
    assert 0 < int(limited.headers["Retry-After"]) <= 900
    assert body["correlationId"] == limited.headers["X-Correlation-ID"]
    assert api.get("/health").status_code == 200
    assert api.get("/metrics").status_code == 200
    assert api.get("/api/openapi.json").status_code == 200
    close_app(app)


def test_rate_limit_is_per_client_ip_behind_a_trusted_proxy(tmp_path: Path) -> None:
    app = make_app(tmp_path / "data", TASKDRIVER_RATE_LIMIT="2 per minute",
                   TASKDRIVER_TRUSTED_PROXIES="1")
    api = Api(app.test_client())
    for client in ("10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2"):
        assert api.get("/api/projects",
                       headers={"X-Forwarded-For": client}).status_code == 200
    assert api.get("/api/projects", headers={"X-Forwarded-For": "10.0.0.1"}).status_code \
        == 429
    close_app(app)


def test_rate_limit_off_and_without_proxy_trust(tmp_path: Path) -> None:
    app = make_app(tmp_path / "data", TASKDRIVER_RATE_LIMIT="off")
    api = Api(app.test_client())
    for _ in range(150):
        assert api.get("/api/projects").status_code == 200
    assert "X-RateLimit-Limit" not in api.get("/api/projects").headers
    close_app(app)
    untrusting = make_app(tmp_path / "data2", TASKDRIVER_RATE_LIMIT="2 per minute")
    api = Api(untrusting.test_client())
    codes = [api.get("/api/projects", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
             for i in range(3)]
    assert codes == [200, 200, 429]  # forged X-Forwarded-For does not buy a new budget
    close_app(untrusting)


def test_cors(tmp_path: Path) -> None:
    app = make_app(tmp_path / "data",
                   TASKDRIVER_CORS_ORIGINS="https://ops.example, https://b.example")
    client = app.test_client()
    preflight = client.options("/api/projects", headers={
        "Origin": "https://ops.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://ops.example"
    response = client.get("/api/projects", headers={
        "Origin": "https://b.example", "Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://b.example"
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert "X-Correlation-ID" in exposed and "X-RateLimit-Remaining" in exposed
    other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    close_app(app)


def test_docs_page_and_its_assets_are_served_locally(api: Api) -> None:
    page = api.as_token(None).get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in html and "https://" not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        response = api.as_token(None).get(f"/api/docs/assets/{asset}")
        assert response.status_code == 200 and len(response.get_data()) > 1000
        response.close()


SEED_OPERATIONS = [
    ("post", "/api/auth/login"), ("post", "/api/auth/logout"),
    ("get", "/api/projects"), ("post", "/api/projects"),
    ("get", "/api/projects/{projectId}"), ("put", "/api/projects/{projectId}"),
    ("delete", "/api/projects/{projectId}"), ("get", "/api/projects/{projectId}/stats"),
    ("get", "/api/projects/{projectId}/task-types"),
    ("post", "/api/projects/{projectId}/task-types"),
    ("get", "/api/task-types/{typeId}"), ("put", "/api/task-types/{typeId}"),
    ("delete", "/api/task-types/{typeId}"),
    ("get", "/api/projects/{projectId}/tasks"), ("post", "/api/projects/{projectId}/tasks"),
    ("post", "/api/projects/{projectId}/tasks/bulk"),
    ("get", "/api/tasks/{taskId}"), ("put", "/api/tasks/{taskId}"),
    ("delete", "/api/tasks/{taskId}"),
    ("get", "/api/projects/{projectId}/agents"),
    ("get", "/api/projects/{projectId}/peek-next-task"),
    ("post", "/api/agents/{agentName}/next-task"),
    ("post", "/api/tasks/{taskId}/complete"), ("post", "/api/tasks/{taskId}/fail"),
    ("post", "/api/projects/{projectId}/cleanup-leases"),
    ("post", "/api/tasks/{taskId}/extend-lease"),
    ("get", "/api/auth/session"), ("put", "/api/auth/session"),
    ("get", "/health"), ("get", "/metrics"), ("get", "/metrics/json"),
]
UNDOCUMENTED_ENDPOINTS = {"static", "swagger_assets.static", "api-docs.openapi_json",
                          "api-docs.openapi_swagger_ui"}


def test_openapi_lists_every_seed_operation(api: Api) -> None:
    spec = api.as_token(None).get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for method, path in SEED_OPERATIONS:
        assert method in spec["paths"].get(path, {}), f"{method.upper()} {path}"
    login = spec["paths"]["/api/auth/login"]["post"]
    assert login["security"] == []
    assert "requestBody" in login and "200" in login["responses"]


def test_every_route_is_documented(app: Flask, api: Api) -> None:
    """Fails as soon as someone adds a route that the OpenAPI document does not show."""
    spec = api.as_token(None).get("/api/openapi.json").get_json()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_ENDPOINTS or rule.endpoint.startswith("dashboard."):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "{" + re.sub(
            r"_([a-z])", lambda n: n[1].upper(), m[1]) + "}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"].get(path, {}), \
                f"{method} {rule.rule} is not in /api/openapi.json"


def test_openapi_serves_generated_clients(api: Api) -> None:
    """The reference's parameter names, and one unique operationId per operation."""
    spec = api.as_token(None).get("/api/openapi.json").get_json()
    ids = []
    for path, operations in spec["paths"].items():
        assert "_" not in "".join(re.findall(r"\{([^}]+)\}", path)), path
        for method, operation in operations.items():
            if method in ("get", "post", "put", "delete"):
                ids.append(operation["operationId"])
                for parameter in operation.get("parameters", []):
                    assert "_" not in parameter["name"], (path, parameter)
    assert len(ids) == len(set(ids)) and "nextTask" in ids and "completeTask" in ids
    bulk = spec["paths"]["/api/projects/{projectId}/tasks/bulk"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header"
               for p in bulk["parameters"])
