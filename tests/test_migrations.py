"""Versioned PostgreSQL migrations: applied once, by hand or at start, data kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from conftest import Api, close_app, make_app, postgres_schema, postgres_unavailable

pytestmark = pytest.mark.skipif(postgres_unavailable() is not None,
                                reason=postgres_unavailable() or "")
FLASK = Path(sys.executable).parent / "flask"
EVERY_MIGRATION = [(1, "initial"), (2, "idempotency_keys"), (3, "priority_and_delay")]


def run_migrate(url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TASKDRIVER_STORAGE_URL": url}
    return subprocess.Popen([str(FLASK), "--app", "taskdriver", "taskdriver", "migrate", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def ledger(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as connection:
        return list(connection.execute(
            "SELECT version, name FROM td_schema_migrations ORDER BY version"))


def test_a_database_from_before_migrations_upgrades_with_nothing_lost(tmp_path: Path) -> None:
    with postgres_schema() as url:
        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)
        api = Api(app.test_client())
        project = api.project("kept")
        tasks = [api.task(project["id"], instructions=f"task {i}")["id"] for i in range(5)]
        close_app(app)
        with psycopg.connect(url, autocommit=True) as connection:  # the schema of before
            connection.execute("DROP TABLE td_schema_migrations")
            connection.execute("DROP TABLE td_idempotency_keys")
            connection.execute("ALTER TABLE td_tasks DROP COLUMN priority, "
                               "DROP COLUMN run_after")

        dry = finished(run_migrate(url, "--dry-run"))
        assert "-- 0001_initial.sql" in dry and "-- 0002_idempotency_keys.sql" in dry
        assert "CREATE TABLE td_idempotency_keys" in dry
        with psycopg.connect(url) as connection:  # a dry run changes nothing
            assert connection.execute(
                "SELECT to_regclass('td_idempotency_keys')").fetchone() == (None,)

        applied = finished(run_migrate(url))
        assert applied.splitlines() == ["applied 0001_initial", "applied 0002_idempotency_keys",
                                        "applied 0003_priority_and_delay"]
        assert ledger(url) == EVERY_MIGRATION
        assert finished(run_migrate(url)).strip() == "the database schema is up to date"

        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)
        api = Api(app.test_client())
        listed = api.get(f"/api/projects/{project['id']}/tasks").get_json()["data"]
        assert [t["id"] for t in listed] == tasks
        close_app(app)


def test_hosts_migrating_at_once_apply_each_migration_once() -> None:
    with postgres_schema() as url:
        outputs = [finished(p) for p in [run_migrate(url) for _ in range(4)]]
        assert sorted(outputs).count("the database schema is up to date\n") == 3
        assert ledger(url) == EVERY_MIGRATION


def test_file_storage_has_nothing_to_migrate(tmp_path: Path) -> None:
    out = finished(run_migrate(f"file:{tmp_path}"))
    assert out.strip() == "file storage has no schema to migrate"


def test_the_claim_query_is_served_by_an_index(tmp_path: Path) -> None:
    """EXPLAIN of `next_due` on 20,000 queued tasks of mixed priorities and delays."""
    from taskdriver.storage.postgres import QUERIES

    with postgres_schema() as url:
        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)
        api = Api(app.test_client())
        project = api.project("explain")
        for start in range(0, 20_000, 1000):
            api.post(f"/api/projects/{project['id']}/tasks/bulk", {"tasks": [
                {"instructions": "x", "priority": i % 7,
                 **({"delaySeconds": 3600} if i % 3 == 0 else {})}
                for i in range(start, start + 1000)]})
        close_app(app)
        with psycopg.connect(url) as connection:
            connection.execute("ANALYZE td_tasks")
            plan = "\n".join(row[0] for row in connection.execute(
                "EXPLAIN " + QUERIES["next_due"],
                {"project_id": project["id"], "now": time.time()}))
        assert "td_tasks_ready" in plan, plan
        assert "Sort" not in plan, plan  # the index gives the order: no sort of the queue
