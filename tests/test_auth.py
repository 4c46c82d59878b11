"""Operator tokens, agent sessions, expiry, and what an agent session may touch."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask

from taskdriver.config import ConfigError

from conftest import (
    ADMIN_TOKEN,
    ALL_BACKENDS,
    Api,
    Clock,
    close_app,
    make_app,
    postgres_schema,
    postgres_unavailable,
)

BACKENDS = ALL_BACKENDS


def test_no_token_bad_token_and_wrong_scheme_are_401(api: Api) -> None:
    for caller in (api.as_token(None), api.as_token("not-a-real-token")):
        response = caller.get("/api/projects")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.get_json()["success"] is False
    response = api.as_token(None).get("/api/projects",
                                      headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
    assert response.status_code == 401


def test_401_comes_before_body_validation(api: Api) -> None:
    assert api.as_token(None).post("/api/projects", {"name": "bad name!"}).status_code == 401


def test_public_routes_need_no_token(api: Api) -> None:
    anonymous = api.as_token(None)
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/api/openapi.json").status_code == 200


def test_login_by_project_name_or_id_and_session_info(api: Api, project: dict) -> None:
    for reference in (project["name"], project["id"]):
        response = api.as_token(None).post("/api/auth/login",
                                           {"agentName": "agent-1", "projectId": reference})
        assert response.status_code == 200
        data = response.get_json()["data"]
        assert set(data) == {"sessionId", "token", "expiresAt", "agentName", "projectId",
                             "resumed"}
        assert data["projectId"] == project["id"] and data["agentName"] == "agent-1"
        assert len(data["token"]) >= 43  # 32 random bytes, base64url
        session = api.as_token(data["token"]).get("/api/auth/session").get_json()["data"]
        assert session["role"] == "agent" and session["sessionId"] == data["sessionId"]
        assert session["expiresAt"] == data["expiresAt"]


def test_login_validation(api: Api, project: dict) -> None:
    anonymous = api.as_token(None)
    bad = anonymous.post("/api/auth/login", {"agentName": "has space", "projectId": "demo"})
    assert bad.status_code == 422
    assert bad.get_json()["validationDetails"][0]["field"] == "agentName"
    assert anonymous.post("/api/auth/login", {"agentName": "a" * 101,
                                              "projectId": "demo"}).status_code == 422
    assert anonymous.post("/api/auth/login", {"projectId": "demo"}).status_code == 422
    assert anonymous.post("/api/auth/login", {"agentName": "a",
                                              "projectId": "nope"}).status_code == 404
    ok = anonymous.post("/api/auth/login", {"agentName": "A.b_c@d:e-1", "projectId": "demo"})
    assert ok.status_code == 200


def test_operator_session_info(api: Api) -> None:
    data = api.get("/api/auth/session").get_json()["data"]
    assert data["role"] == "admin"


def test_logout_ends_the_token_at_once(api: Api, project: dict) -> None:
    agent = api.login("agent-1", "demo")
    assert agent.get(f"/api/projects/{project['id']}").status_code == 200
    assert agent.post("/api/auth/logout").status_code == 200
    assert agent.get(f"/api/projects/{project['id']}").status_code == 401
    assert agent.post("/api/auth/logout").status_code == 401


def test_session_expires_and_slides_with_use(api: Api, project: dict, clock: Clock) -> None:
    agent = api.login("agent-1", "demo")
    clock.advance(3000)
    assert agent.get("/api/auth/session").status_code == 200  # use slides the expiry
    clock.advance(3000)  # 6000 s after login, 3000 s after last use
    assert agent.get("/api/auth/session").status_code == 200
    clock.advance(3601)
    response = agent.get("/api/auth/session")
    assert response.status_code == 401
    assert response.get_json()["error"] == "Invalid or expired token"


def test_put_session_extends_expiry(api: Api, project: dict, clock: Clock) -> None:
    agent = api.login("agent-1", "demo")
    before = agent.get("/api/auth/session").get_json()["data"]["expiresAt"]
    extended = agent.put("/api/auth/session", {"extendBy": 7200})
    assert extended.status_code == 200
    assert extended.get_json()["data"]["expiresAt"] > before
    clock.advance(3600 + 3600)  # past the original TTL, inside the extension
    assert agent.get("/api/auth/session").status_code == 200
    for bad in (0, 86401, "x"):
        assert agent.put("/api/auth/session", {"extendBy": bad}).status_code == 422


def test_agent_key_is_required_when_configured(tmp_path: Path) -> None:
    app = make_app(tmp_path / "data", TASKDRIVER_AGENT_KEY="fleet-secret")
    api = Api(app.test_client())
    api.project("demo")
    anonymous = api.as_token(None)
    body = {"agentName": "a", "projectId": "demo"}
    assert anonymous.post("/api/auth/login", body).status_code == 401
    assert anonymous.post("/api/auth/login", {**body, "agentKey": "wrong"}).status_code == 401
    assert anonymous.post("/api/auth/login",
                          {**body, "agentKey": "fleet-secret"}).status_code == 200
    close_app(app)


def test_agent_scope(api: Api, project: dict) -> None:
    other = api.project("other")
    agent = api.login("agent-1", "demo")
    # another project's resources
    other_type = api.task_type(other["id"])
    other_task = api.task(other["id"])
    for path in (f"/api/projects/{other['id']}", f"/api/projects/{other['id']}/stats",
                 f"/api/projects/{other['id']}/tasks", f"/api/task-types/{other_type['id']}",
                 f"/api/tasks/{other_task['id']}"):
        assert agent.get(path).status_code == 403, path
    assert agent.post(f"/api/projects/{other['id']}/tasks",
                      {"instructions": "x"}).status_code == 403
    assert agent.next_task("agent-1", other["id"]).status_code == 403
    # reports on another project's task are refused as such, on a task that is nowhere: 404
    missing = "00000000-0000-4000-8000-000000000000"
    for action, body in (("complete", {"result": "x"}), ("fail", {"error": "x"}),
                         ("release", {}), ("extend-lease", {"extensionMinutes": 5})):
        assert agent.post(f"/api/tasks/{other_task['id']}/{action}", body).status_code == 403
        assert agent.post(f"/api/tasks/{missing}/{action}", body).status_code == 404
    assert api.get(f"/api/tasks/{other_task['id']}").get_json()["data"]["status"] == "queued"
    # project administration
    assert agent.post("/api/projects", {"name": "mine"}).status_code == 403
    assert agent.put(f"/api/projects/{project['id']}", {"description": "x"}).status_code == 403
    assert agent.delete(f"/api/projects/{project['id']}").status_code == 403
    # acting as another agent
    assert agent.next_task("agent-2").status_code == 403
    # inside its project: read everything, manage task types and tasks
    assert agent.get(f"/api/projects/{project['id']}").status_code == 200
    listed = agent.get("/api/projects?status=all").get_json()
    assert [p["id"] for p in listed["data"]] == [project["id"]]
    task_type = agent.post(f"/api/projects/{project['id']}/task-types", {"name": "t"})
    assert task_type.status_code == 201
    type_id = task_type.get_json()["data"]["id"]
    assert agent.put(f"/api/task-types/{type_id}", {"maxRetries": 1}).status_code == 200
    task = agent.post(f"/api/projects/{project['id']}/tasks", {"instructions": "x"})
    assert task.status_code == 201
    assert agent.delete(f"/api/tasks/{task.get_json()['data']['id']}").status_code == 200
    assert agent.delete(f"/api/task-types/{type_id}").status_code == 200


def test_first_start_mints_an_operator_token_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = make_app(data_dir, TASKDRIVER_ADMIN_TOKEN="")
    token_file = data_dir / "admin.token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    token = token_file.read_text().strip()
    api = Api(app.test_client(), token)
    assert api.get("/api/auth/session").get_json()["data"]["role"] == "admin"
    close_app(app)
    token_file.unlink()
    again = make_app(data_dir, TASKDRIVER_ADMIN_TOKEN="")  # a token exists: no new file
    assert not token_file.exists()
    assert Api(again.test_client(), token).get("/api/projects").status_code == 200
    close_app(again)


def test_a_second_server_on_the_data_dir_never_overwrites_the_token_file(tmp_path: Path
                                                                        ) -> None:
    if postgres_unavailable():
        pytest.skip(postgres_unavailable() or "")
    data_dir = tmp_path / "data"
    file_backed = make_app(data_dir, TASKDRIVER_ADMIN_TOKEN="")
    token_file = data_dir / "admin.token"
    token = token_file.read_text()
    with postgres_schema() as url:
        other = make_app(data_dir, TASKDRIVER_ADMIN_TOKEN="", TASKDRIVER_STORAGE_URL=url)
        assert token_file.read_text() == token  # not rewritten
        assert Api(other.test_client(), token.strip()).get("/api/projects").status_code == 200
        close_app(other)
    assert Api(file_backed.test_client(), token.strip()).get("/api/projects").status_code == 200
    close_app(file_backed)


def test_an_unusable_token_file_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "admin.token").write_text("short\n")
    with pytest.raises(ConfigError, match="holds no usable token"):
        make_app(data_dir, TASKDRIVER_ADMIN_TOKEN="")
    assert (data_dir / "admin.token").read_text() == "short\n"


def test_cli_admin_token_works_and_tokens_are_stored_hashed(app: Flask, tmp_path: Path,
                                                           backend: str) -> None:
    result: Result = app.test_cli_runner().invoke(args=["taskdriver", "create-admin-token"])
    assert result.exit_code == 0
    minted = result.output.strip()
    api = Api(app.test_client(), minted)
    api.project("demo")
    agent_token = api.login("agent-1", "demo").token
    assert api.get("/api/auth/session").get_json()["data"]["role"] == "admin"
    stored = everything_stored(app, tmp_path / "data", backend)
    assert hashlib.sha256(agent_token.encode()).hexdigest().encode() in stored
    assert minted.encode() not in stored
    assert agent_token.encode() not in stored


def everything_stored(app: Flask, data_dir: Path, backend: str) -> bytes:
    """Every byte the backend holds: the data directory's files, or every row's text."""
    if backend == "file":
        return b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    import psycopg
    url = app.config["TASKDRIVER_SETTINGS"].storage_url
    with psycopg.connect(url) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        return "".join(str(connection.execute(f"SELECT json_agg(t) FROM {table} t").fetchone())
                       for table in tables).encode()


def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = make_app(data_dir)
    api = Api(first.test_client())
    api.project("demo")
    token = api.login("agent-1", "demo").token
    close_app(first)
    second = make_app(data_dir)
    response = Api(second.test_client(), token).get("/api/auth/session")
    assert response.status_code == 200 and response.get_json()["data"]["agentName"] == "agent-1"
    close_app(second)
