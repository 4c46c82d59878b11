"""Operator-only routes are marked on their views (`api/operator_only.py`): every route the
service refuses to an agent carries the mark, and the mark refuses an agent (403) before
any rule of its body (400, 422) is looked at."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

from taskdriver.api.operator_only import operator_action

from conftest import Api

# What the contract reserves to operators (CONTRACT.md, "Auth"), by method and route.
CONTRACT_OPERATOR_ONLY = {
    ("POST", "/api/projects"),
    ("PUT", "/api/projects/<uuid:project_id>"),
    ("DELETE", "/api/projects/<uuid:project_id>"),
    ("POST", "/api/projects/<uuid:project_id>/tasks/retry"),
    ("POST", "/api/tasks/<uuid:task_id>/retry"),
    ("POST", "/api/tasks/<uuid:task_id>/cancel"),  # issue 22
    ("POST", "/api/projects/<uuid:project_id>/tasks/cancel"),
}
# The smallest body each route takes (none needed: `{}`), so an agent's request reaches
# the service's own decision rather than a 422.
VALID_BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/api/auth/session"): {"extendBy": 60},
    ("POST", "/api/projects"): {"name": "another"},
    ("PUT", "/api/projects/<uuid:project_id>"): {"description": "x"},
    ("POST", "/api/projects/<uuid:project_id>/task-types"): {"name": "fresh-type"},
    ("POST", "/api/projects/<uuid:project_id>/tasks"): {"instructions": "x"},
    ("POST", "/api/projects/<uuid:project_id>/tasks/bulk"): {"tasks": [{"instructions": "x"}]},
    ("POST", "/api/tasks/<uuid:task_id>/fail"): {"error": "x"},
    ("POST", "/api/tasks/<uuid:task_id>/extend-lease"): {"extensionMinutes": 1},
    ("POST", "/api/tasks/<uuid:task_id>/progress"): {"progress": 1},
}
BODY_METHODS = {"POST", "PUT"}


def _agent_routes(app: Flask) -> list[tuple[str, Rule]]:
    """Every method of every /api route that needs a token (all but login and the docs)."""
    return [(method, rule) for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/api/")
            and rule.endpoint not in {"auth.login", "swagger_assets.static"}
            and not rule.endpoint.startswith("api-docs.")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]


def _marked(app: Flask) -> set[tuple[str, str]]:
    return {(method, rule.rule) for method, rule in _agent_routes(app)
            if operator_action(app.view_functions[rule.endpoint], method) is not None}


def _fill(rule: Rule, values: dict[str, str]) -> str:
    path = rule.rule
    for name in rule.arguments:
        start = path.index("<")
        path = path[:start] + values[name] + path[path.index(">") + 1:]
    return path


def _fresh_path(api: Api, rule: Rule, project_id: str) -> str:
    """The rule's path with the IDs of fresh objects in the agent's own project."""
    values: dict[str, str] = {"project_id": project_id, "agent_name": "agent-1",
                              "batch_id": "b1"}
    if "type_id" in rule.arguments:
        values["type_id"] = api.task_type(project_id, f"type-{uuid.uuid4().hex[:8]}")["id"]
    if "task_id" in rule.arguments:
        values["task_id"] = api.task(project_id, batchId="b1")["id"]
    return _fill(rule, values)


def test_every_route_the_service_refuses_to_agents_is_marked(
        app: Flask, api: Api, project: dict[str, Any]) -> None:
    refused = set()
    for method, rule in _agent_routes(app):
        agent = api.login("agent-1", "demo")  # afresh: one of the routes is logout
        body = VALID_BODIES.get((method, rule.rule), {}) if method in BODY_METHODS else None
        response = agent.call(method, _fresh_path(api, rule, project["id"]), json=body)
        assert response.status_code not in (400, 422) and response.status_code < 500, (
            method, rule.rule, response.get_json())  # the service itself answered
        if response.status_code == 403:
            refused.add((method, rule.rule))
    assert refused == _marked(app) == CONTRACT_OPERATOR_ONLY


def test_an_agent_is_refused_before_its_body_is_looked_at(
        app: Flask, api: Api, project: dict[str, Any]) -> None:
    agent = api.login("agent-1", "demo")
    bad_bodies = {
        "unstorable": ({"description": "a\u0000b"}, 422),  # refused by http.py, any route
        "off-schema": ({"bogus": True, "batchId": 7}, 422),  # refused by the route's schema
        "not JSON": (b"{not json", 400),
    }
    for method, rule in _agent_routes(app):
        if (method, rule.rule) not in CONTRACT_OPERATOR_ONLY or method not in BODY_METHODS:
            continue
        task = api.task(project["id"], instructions="to retry")
        path = _fill(rule, {"project_id": project["id"], "task_id": task["id"]})
        for name, (body, operator_status) in bad_bodies.items():
            kwargs: dict[str, Any] = {"json": body} if not isinstance(body, bytes) else {
                "data": body, "content_type": "application/json"}
            refusal = agent.call(method, path, **kwargs)
            assert refusal.status_code == 403, (method, rule.rule, name)
            assert refusal.get_json()["error"].startswith("Only operators may ")
            if name == "off-schema" and rule.rule == "/api/tasks/<uuid:task_id>/retry":
                continue  # this route reads no body: an operator's answer is the retry's own
            assert api.call(method, path, **kwargs).status_code == operator_status, (
                method, rule.rule, name)
