"""Shared fixtures: an app per test with its own data directory and a clock tests can move."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from taskdriver import create_app
from taskdriver.api.context import services

ADMIN_TOKEN = "test-operator-token-0123456789abcdef"


class Clock:
    """A settable clock: tests expire leases and sessions by moving it, not by sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """A thin JSON client over Flask's test client, with the operator token by default."""

    def __init__(self, client: FlaskClient, token: str | None = ADMIN_TOKEN) -> None:
        self.client = client
        self.token = token

    def as_token(self, token: str | None) -> Api:
        return Api(self.client, token)

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.client.open(path, method=method, json=json, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.call("PUT", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)

    # factories ---------------------------------------------------------------------------

    def project(self, name: str = "demo", **fields: Any) -> dict[str, Any]:
        response = self.post("/api/projects", {"name": name, **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"]

    def task_type(self, project_id: str, name: str = "analyse", **fields: Any) -> dict[str, Any]:
        response = self.post(f"/api/projects/{project_id}/task-types", {"name": name, **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"]

    def task(self, project_id: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("instructions", "do it")
        response = self.post(f"/api/projects/{project_id}/tasks", fields)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"]

    def login(self, agent_name: str, project: str) -> Api:
        response = self.client.post("/api/auth/login",
                                    json={"agentName": agent_name, "projectId": project})
        assert response.status_code == 200, response.get_json()
        return Api(self.client, response.get_json()["data"]["token"])

    def next_task(self, agent_name: str, project_id: str | None = None) -> Any:
        body = {} if project_id is None else {"projectId": project_id}
        return self.post(f"/api/agents/{agent_name}/next-task", body)


def make_app(data_dir: Path, clock: Clock | None = None, **overrides: Any) -> Flask:
    config = {"TASKDRIVER_DATA_DIR": str(data_dir), "TASKDRIVER_ADMIN_TOKEN": ADMIN_TOKEN,
              "TASKDRIVER_RATE_LIMIT": "off", **overrides}
    app = create_app(config, clock=clock or time.time)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    application = make_app(tmp_path / "data", clock)
    yield application
    close_app(application)


def close_app(application: Flask) -> None:
    """Close the storage files an app holds open (tests run with warnings as errors)."""
    with application.app_context():
        services().driver.storage.close()


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


@pytest.fixture
def project(api: Api) -> dict[str, Any]:
    return api.project("demo")
