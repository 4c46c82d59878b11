"""One live session per agent by default, `resumeExisting`, `allowMultipleSessions`."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import requests

from conftest import ADMIN_TOKEN, ALL_BACKENDS, Api, Clock, postgres_schema
from live_server import serving

BACKENDS = ALL_BACKENDS


def login(api: Api, project: str, **options: Any) -> dict[str, Any]:
    response = api.as_token(None).post("/api/auth/login", {
        "agentName": "agent-1", "projectId": project, **options})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_a_new_login_ends_the_agents_earlier_session(api: Api, project: dict) -> None:
    first = login(api, project["id"])
    assert first["resumed"] is False
    second = login(api, project["id"])
    refused = api.as_token(first["token"]).get("/api/auth/session")
    assert refused.status_code == 401
    assert "newer login for agent agent-1 ended this session" in refused.get_json()["error"]
    assert api.as_token(second["token"]).get("/api/auth/session").status_code == 200
    other = api.as_token(None).post("/api/auth/login", {"agentName": "agent-2",
                                                        "projectId": project["id"]})
    assert other.status_code == 200  # another agent name is untouched, and untouching
    assert api.as_token(second["token"]).get("/api/auth/session").status_code == 200


def test_allow_multiple_sessions_keeps_the_earlier_one(api: Api, project: dict) -> None:
    first = login(api, project["id"])
    second = login(api, project["id"], allowMultipleSessions=True)
    for session in (first, second):
        assert api.as_token(session["token"]).get("/api/auth/session").status_code == 200


def test_resume_existing_continues_the_session(api: Api, project: dict, clock: Clock) -> None:
    first = login(api, project["id"])
    clock.advance(600)
    resumed = login(api, project["id"], resumeExisting=True)
    assert resumed["resumed"] is True and resumed["sessionId"] == first["sessionId"]
    assert resumed["expiresAt"] > first["expiresAt"] and resumed["token"] != first["token"]
    assert api.as_token(resumed["token"]).get("/api/auth/session").get_json()["data"][
        "sessionId"] == first["sessionId"]


def test_resume_without_a_live_session_opens_a_new_one(api: Api, project: dict) -> None:
    fresh = login(api, project["id"], resumeExisting=True)
    assert fresh["resumed"] is False


def test_the_new_fields_are_booleans_and_in_the_openapi_document(api: Api, project: dict
                                                                 ) -> None:
    for field in ("resumeExisting", "allowMultipleSessions"):
        response = api.as_token(None).post("/api/auth/login", {
            "agentName": "a", "projectId": project["id"], field: "yes"})
        assert response.status_code == 422
        assert response.get_json()["validationDetails"][0]["field"] == field
    schemas = api.get("/api/openapi.json").get_json()["components"]["schemas"]
    properties = [set(schema.get("properties", {})) for schema in schemas.values()]
    assert any({"resumeExisting", "allowMultipleSessions"} <= p for p in properties)
    assert any({"resumed", "sessionId", "token"} <= p for p in properties)


def test_an_agent_is_refused_operator_actions_whatever_its_body(api: Api, project: dict
                                                                ) -> None:
    agent = api.as_token(login(api, project["id"])["token"])
    for method, path, body in (("POST", "/api/projects", {}),
                               ("POST", "/api/projects", {"bogus": 1}),
                               ("PUT", f"/api/projects/{project['id']}", {"name": "!!"}),
                               ("DELETE", f"/api/projects/{project['id']}", None)):
        response = agent.call(method, path, json=body)
        assert response.status_code == 403, (method, path, body)


@pytest.mark.slow
def test_two_servers_sharing_storage_end_each_others_sessions(tmp_path: Path,
                                                             backend: str) -> None:
    env: dict[str, str] = {"TASKDRIVER_ADMIN_TOKEN": ADMIN_TOKEN}
    with postgres_schema() if backend == "postgresql" else nullcontext() as url:
        if url:
            env["TASKDRIVER_STORAGE_URL"] = url
        with serving(tmp_path / "data", 2, **env) as one, \
                serving(tmp_path / "data", 2, **env) as two:
            requests.post(f"{one.url}/api/projects", json={"name": "shared"}, timeout=30,
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            body = {"agentName": "a", "projectId": "shared"}
            first = requests.post(f"{one.url}/api/auth/login", json=body,
                                  timeout=30).json()["data"]
            requests.post(f"{two.url}/api/auth/login", json=body, timeout=30)
            for server in (one, two):
                refused = requests.get(f"{server.url}/api/auth/session", timeout=30,
                                       headers={"Authorization": f"Bearer {first['token']}"})
                assert refused.status_code == 401 and "newer login" in refused.json()["error"]

