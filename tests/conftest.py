"""Shared fixtures: an app per test with its own data directory and a clock tests can move."""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema, ValidationError

from taskdriver import create_app
from taskdriver.api.dumping import COMPILED
from taskdriver.api.loading import COMPILED_LOADS
from taskdriver.extension import services

ADMIN_TOKEN = "test-operator-token-0123456789abcdef"
POSTGRES_URL = os.environ.get("TASKDRIVER_TEST_DATABASE_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
ALL_BACKENDS = ("file", "postgresql")
"""Test modules that set `BACKENDS = ALL_BACKENDS` run every test on both backends: the
storage contract is shown through the HTTP API, once per backend."""


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return (f"PostgreSQL is not reachable at {POSTGRES_URL} ({exc.__class__.__name__}); "
                "set TASKDRIVER_TEST_DATABASE_URL to run the PostgreSQL backend tests")


@pytest.fixture(autouse=True)
def compiled_dumps_match_marshmallow() -> Iterator[None]:
    """Every response a test makes is dumped both ways: the compiled dump (api/dumping.py)
    must give exactly what marshmallow's own Schema.dump gives for the same object."""
    originals = [(schema, schema.dump) for schema, _ in COMPILED]

    def checked(schema: Schema, compiled: Any) -> Any:
        def dump(obj: Any) -> Any:
            fast, reference = compiled(obj), Schema.dump(schema, obj)
            assert fast == reference and list(fast) == list(reference), (
                f"{type(schema).__name__}: compiled dump differs from marshmallow's")
            return fast
        return dump

    for schema, compiled in originals:
        schema.dump = checked(schema, compiled)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for schema, compiled in originals:
            schema.dump = compiled  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def compiled_loads_match_marshmallow() -> Iterator[None]:
    """Every bulk item a test sends is loaded both ways: the compiled load (api/loading.py)
    must give what marshmallow's own Schema.load gives, or refuse it with the same errors."""
    import taskdriver.api.tasks as task_views

    compiled = task_views.LOAD_BULK_ITEM
    [(schema, in_use)] = COMPILED_LOADS  # the one compiled load there is
    assert in_use is compiled

    def outcome(load: Any, raw: Any) -> Any:
        try:
            return load(raw)
        except ValidationError as exc:
            return ValidationError, exc.messages

    def checked(raw: Any) -> Any:
        fast, reference = outcome(compiled, raw), outcome(schema.load, raw)
        assert fast == reference, "compiled load differs from marshmallow's"
        return compiled(raw)

    task_views.LOAD_BULK_ITEM = checked
    try:
        yield
    finally:
        task_views.LOAD_BULK_ITEM = compiled


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = getattr(metafunc.module, "BACKENDS", ("file",))
        metafunc.parametrize("backend", [
            pytest.param(name, marks=pytest.mark.skipif(
                name == "postgresql" and postgres_unavailable() is not None,
                reason=postgres_unavailable() or ""))
            for name in backends])


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A storage URL pointing at a fresh PostgreSQL schema, dropped afterwards."""
    schema = f"td_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


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
def app(tmp_path: Path, clock: Clock, backend: str) -> Iterator[Flask]:
    if backend == "file":
        application = make_app(tmp_path / "data", clock)
        yield application
        close_app(application)
        return
    with postgres_schema() as url:
        application = make_app(tmp_path / "data", clock, TASKDRIVER_STORAGE_URL=url)
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
