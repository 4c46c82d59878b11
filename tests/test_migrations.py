"""Versioned PostgreSQL migrations: applied once, by hand or at start, data kept."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psycopg
import pytest

from conftest import Api, close_app, make_app, postgres_schema, postgres_unavailable

pytestmark = pytest.mark.skipif(postgres_unavailable() is not None,
                                reason=postgres_unavailable() or "")
FLASK = Path(sys.executable).parent / "flask"
EVERY_MIGRATION = [(1, "initial"), (2, "idempotency_keys"), (3, "priority_and_delay"),
                   (4, "task_row_claims"), (5, "controls"), (6, "dependencies"),
                   (7, "archive"), (8, "bounded_claims"), (9, "quiet_tallies")]

UNDO_0004 = """
DROP TABLE td_task_counts, td_batch_counts;
DROP FUNCTION td_tally_tasks, td_add_moves CASCADE;
DROP SEQUENCE td_task_seq;
DROP INDEX td_tasks_one_lease, td_tasks_unique_key;
ALTER TABLE td_tasks DROP COLUMN lease_expires_at, DROP COLUMN unique_key;
"""


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
            connection.execute(undo_0009())
            connection.execute("DROP TABLE td_schema_migrations")
            connection.execute("DROP TABLE td_idempotency_keys")
            connection.execute("ALTER TABLE td_tasks DROP COLUMN priority, "
                               "DROP COLUMN run_after")
            connection.execute(UNDO_0004)
            connection.execute("DROP TABLE td_archived_tasks, td_archive_segments")

        dry = finished(run_migrate(url, "--dry-run"))
        assert "-- 0001_initial.sql" in dry and "-- 0002_idempotency_keys.sql" in dry
        assert "CREATE TABLE td_idempotency_keys" in dry
        with psycopg.connect(url) as connection:  # a dry run changes nothing
            assert connection.execute(
                "SELECT to_regclass('td_idempotency_keys')").fetchone() == (None,)

        applied = finished(run_migrate(url))
        assert applied.splitlines() == ["applied 0001_initial", "applied 0002_idempotency_keys",
                                        "applied 0003_priority_and_delay",
                                        "applied 0004_task_row_claims", "applied 0005_controls",
                                        "applied 0006_dependencies", "applied 0007_archive",
                                        "applied 0008_bounded_claims",
                                        "applied 0009_quiet_tallies"]
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


def _schema_at(url: str, version: int) -> None:
    """Apply the shipped migrations up to `version` only, as a server of that time did."""
    from taskdriver.storage.migrations import LEDGER, available

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(LEDGER)
        for migration in available():
            if migration.version <= version:
                connection.execute(migration.sql)
                connection.execute("INSERT INTO td_schema_migrations (version, name) "
                                   "VALUES (%s, %s)", (migration.version, migration.name))


def test_0004_upgrades_a_database_holding_tasks_in_every_state(tmp_path: Path) -> None:
    """Tasks written by the 0003 schema (its per-row count trigger, max(seq) + 1 positions):
    after 0004 the counts, batches, leases and positions carry on from them."""
    from dataclasses import replace

    from taskdriver.models import (
        Attempt,
        Project,
        ProjectConfig,
        ProjectStatus,
        Task,
        TaskStatus,
        new_id,
        new_id_within,
    )

    now = time.time()
    project = Project(id=new_id(), name="old", description="", instructions="",
                      status=ProjectStatus.ACTIVE, config=ProjectConfig(), created_at=now,
                      updated_at=now, owner_prefixed_ids=True)
    base = Task(id="", project_id=project.id, seq=0, type_id=None, instructions="x",
                variables={}, batch_id="b1", status=TaskStatus.QUEUED, max_retries=3,
                created_at=now, updated_at=now)
    tasks = [replace(base, id=new_id_within(project.id), seq=seq, **fields) for seq, fields in [
        (1, {}), (2, {"run_after": now + 3600, "batch_id": None}),
        (3, {"status": TaskStatus.RUNNING, "assigned_to": "live", "assigned_at": now,
             "lease_expires_at": now + 3600, "attempts": (Attempt(new_id(), "live", now),)}),
        (4, {"status": TaskStatus.RUNNING, "assigned_to": "lapsed", "assigned_at": now - 60,
             "lease_expires_at": now - 1,
             "attempts": (Attempt(new_id(), "lapsed", now - 60),)}),
        (5, {"status": TaskStatus.COMPLETED, "completed_at": now, "batch_id": "b2"}),
        (6, {"status": TaskStatus.FAILED, "error": "no"})]]
    with postgres_schema() as url:
        _schema_at(url, 3)
        with psycopg.connect(url) as connection:
            connection.execute("INSERT INTO td_projects (id, name, data) VALUES (%s, %s, %s)",
                               (project.id, project.name, orjson.dumps(project).decode()))
            for task in tasks:
                connection.execute(
                    "INSERT INTO td_tasks (id, project_id, seq, status, batch_id, assigned_to, "
                    "assigned_at, completed_at, updated_at, priority, run_after, data) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (task.id, project.id, task.seq, task.status.value, task.batch_id,
                     task.assigned_to, task.assigned_at, task.completed_at, task.updated_at,
                     task.priority, task.run_after, orjson.dumps(task).decode()))
        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)  # migrates at start
        try:
            assert ledger(url) == EVERY_MIGRATION
            api = Api(app.test_client())
            base_path = f"/api/projects/{project.id}"
            stats = api.get(f"{base_path}/stats").get_json()["data"]
            assert stats["delayedTasks"] == 1 and stats["project"]["stats"] == {
                "totalTasks": 6, "queuedTasks": 2, "runningTasks": 2, "completedTasks": 1,
                "failedTasks": 1, "cancelledTasks": 0, "waitingTasks": 0,
                "archivedTasks": 0}
            batch = api.get(f"{base_path}/batches/b1").get_json()["data"]
            assert (batch["total"], batch["queued"], batch["running"]) == (4, 1, 2), batch
            assert api.get(f"{base_path}/peek-next-task").get_json()["data"][
                "tasksAvailable"] == 2  # the due task and the lapsed lease
            claimed = api.next_task("new", project.id).get_json()["data"]["task"]
            assert claimed["id"] == tasks[0].id  # the reaper found the lapsed lease too
            assert api.get(f"/api/tasks/{tasks[3].id}").get_json()["data"]["status"] == "queued"
            assert api.next_task("live", project.id).get_json()["data"]["task"][
                "id"] == tasks[2].id  # its lease carried over
            added = api.task(project.id, instructions="after the upgrade")
            listed = api.get(f"{base_path}/tasks?limit=10").get_json()["data"]
            assert listed[-1]["id"] == added["id"]  # positions go on after the old ones
        finally:
            close_app(app)



UNDO_0008 = """
DROP INDEX td_tasks_ready_by_type, td_tasks_ready_untyped, td_tasks_waiting_by_type;
CREATE INDEX td_tasks_ready_by_type
    ON td_tasks (project_id, type_id, priority DESC, seq) WHERE status = 'queued';
CREATE INDEX td_tasks_active_type
    ON td_tasks (type_id) WHERE status IN ('queued', 'running', 'waiting');
DELETE FROM td_schema_migrations WHERE version = 8;
"""


def test_0008_upgrades_a_database_holding_tasks_in_every_state(tmp_path: Path) -> None:
    """Tasks of every status under the 0007 indexes: after 0008 the claim still passes over
    a type at its maxConcurrent to the other type and to untyped tasks, and a type is in
    use exactly while a queued, running or waiting task has it."""
    with postgres_schema() as url:
        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)
        api = Api(app.test_client())
        project = api.project("old")["id"]
        kinds = {name: api.post(f"/api/projects/{project}/task-types",
                                {"name": name, **fields}).get_json()["data"]["id"]
                 for name, fields in (("limited", {"maxConcurrent": 1}), ("free", {}),
                                      ("later", {}), ("done", {"maxRetries": 0}))}
        finished = [api.task(project, typeId=kinds["done"], priority=9)["id"]
                    for _ in range(3)]
        running = api.task(project, typeId=kinds["limited"], priority=8)["id"]
        queued = [api.task(project, typeId=kinds["limited"])["id"],
                  api.task(project, typeId=kinds["free"])["id"], api.task(project)["id"]]
        api.task(project, typeId=kinds["later"], dependsOn=[queued[1]])  # waiting
        for outcome, body in (("complete", {}), ("fail", {"error": "no"})):
            task = api.next_task("a0", project).get_json()["data"]["task"]
            assert api.post(f"/api/tasks/{task['id']}/{outcome}",
                            {"agentName": "a0", **body}).status_code == 200
        assert api.post(f"/api/tasks/{finished[2]}/cancel", {}).status_code == 200
        assert api.next_task("a1", project).get_json()["data"]["task"]["id"] == running
        close_app(app)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(UNDO_0008)

        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)  # migrates at start
        try:
            assert ledger(url) == EVERY_MIGRATION
            with psycopg.connect(url) as connection:
                indexes = {row[0] for row in connection.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
            assert {"td_tasks_ready_by_type", "td_tasks_ready_untyped",
                    "td_tasks_waiting_by_type"} <= indexes
            assert "td_tasks_active_type" not in indexes
            api = Api(app.test_client())
            statuses = {name: api.delete(f"/api/task-types/{type_id}").status_code
                        for name, type_id in kinds.items() if name != "free"}
            # In use while queued and running (limited), waiting (later); not when finished.
            assert statuses == {"limited": 409, "later": 409, "done": 200}, statuses
            claimed = [api.next_task(f"b{i}", project).get_json()["data"]["task"]
                       for i in range(3)]
            # The limited type is at its limit: its queued task waits; the others go.
            assert [t and t["id"] for t in claimed] == [queued[1], queued[2], None]
        finally:
            close_app(app)


MIGRATIONS = Path(__file__).resolve().parent.parent / "taskdriver/storage/sql/migrations"


def undo_0009() -> str:
    """Back to 0008's counting: its statement trigger for updates, with the tally function
    as 0004 wrote it (taken from that migration's own text)."""
    tally = re.search(r"CREATE FUNCTION td_tally_tasks\(\).*?END \$\$;",
                      (MIGRATIONS / "0004_task_row_claims.sql").read_text(), re.S)
    assert tally is not None
    return f"""
DROP TRIGGER td_tasks_tally_move ON td_tasks;
DROP FUNCTION td_tally_move();
{tally.group(0).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")}
CREATE TRIGGER td_tasks_tally_update AFTER UPDATE ON td_tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION td_tally_tasks();
DELETE FROM td_schema_migrations WHERE version = 9;
"""


def counted(api: Api, url: str, project_id: str) -> None:
    """The kept counts (project stats, each batch) equal the tasks counted row by row."""
    with psycopg.connect(url) as connection:
        by_status = dict(connection.execute(
            "SELECT status, count(*) FROM td_tasks WHERE project_id = %s GROUP BY status",
            (project_id,)).fetchall())
        by_batch = connection.execute(
            "SELECT batch_id, status, count(*) FROM td_tasks WHERE project_id = %s"
            " AND batch_id IS NOT NULL GROUP BY batch_id, status", (project_id,)).fetchall()
    stats = api.get(f"/api/projects/{project_id}/stats").get_json()["data"]["project"]["stats"]
    assert stats["totalTasks"] == sum(by_status.values())
    for status in ("queued", "running", "completed", "failed", "waiting"):
        assert stats[f"{status}Tasks"] == by_status.get(status, 0), (status, stats)
    for batch_id in {row[0] for row in by_batch}:
        batch = api.get(f"/api/projects/{project_id}/batches/{batch_id}").get_json()["data"]
        for _, status, count in (row for row in by_batch if row[0] == batch_id):
            assert batch[status] == count, (batch_id, status, batch)


def test_0009_upgrades_a_database_counting_with_0008s_triggers(tmp_path: Path) -> None:
    """Tasks of every status, counted by 0008's statement trigger; after 0009 every move
    (a claim, an outcome, a retry, a lease extended, a cancel, a batch change) keeps the
    project's and each batch's counts equal to the rows."""
    with postgres_schema() as url:
        with psycopg.connect(url, autocommit=True) as connection:
            app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)
            connection.execute(undo_0009())
        api = Api(app.test_client())
        project = api.project("counted", config={"defaultMaxRetries": 1})["id"]
        api.post(f"/api/projects/{project}/tasks/bulk",
                 {"tasks": [{"instructions": f"t{i}"} for i in range(8)], "batchId": "b1"})
        first = api.task(project, instructions="first", batchId="b2")["id"]
        api.task(project, instructions="later", dependsOn=[first])  # waiting
        for agent, outcome, body in (("a0", "complete", {}), ("a1", "fail", {"error": "x"}),
                                     ("a2", "fail", {"error": "x", "canRetry": False})):
            task = api.next_task(agent, project).get_json()["data"]["task"]
            assert api.post(f"/api/tasks/{task['id']}/{outcome}",
                            {"agentName": agent, **body}).status_code == 200
        api.next_task("a3", project)  # running
        counted(api, url, project)
        close_app(app)

        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)  # migrates at start
        try:
            assert ledger(url) == EVERY_MIGRATION
            api = Api(app.test_client())
            leased = api.next_task("a4", project).get_json()["data"]["task"]
            assert api.post(f"/api/tasks/{leased['id']}/extend-lease",
                            {"agentName": "a4", "extensionMinutes": 5}).status_code == 200
            counted(api, url, project)
            for agent in ("a4", "a5"):
                task = api.next_task(agent, project).get_json()["data"]["task"]
                assert api.post(f"/api/tasks/{task['id']}/complete",
                                {"agentName": agent}).status_code == 200
            assert api.post(f"/api/projects/{project}/tasks/cancel",
                            {"batchId": "b1"}).status_code == 200
            assert api.put(f"/api/tasks/{first}", {"batchId": "b3"}).status_code == 200
            counted(api, url, project)
        finally:
            close_app(app)
