"""PostgreSQL claims lock only their task: agents of one project never queue behind each
other, and what the project lock used to protect the database keeps (issue 21)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from flask import Flask

from taskdriver.models import TaskStatus
from taskdriver.storage.base import Contention
from taskdriver.storage.postgres import PostgresStorage

from conftest import Api, close_app, make_app, postgres_schema, postgres_unavailable

pytestmark = pytest.mark.skipif(postgres_unavailable() is not None,
                                reason=postgres_unavailable() or "")
WITHIN_SECONDS = 1.0


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    with postgres_schema() as url:
        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)
        yield app, url
        close_app(app)


def test_a_claim_passes_over_a_task_another_transaction_holds(database: tuple[Flask, str]
                                                              ) -> None:
    """While another connection holds the first queued task's row lock (as a claim or an
    outcome in flight would), an agent's next-task gets the second task within a second.
    Before issue 21 it waited for that transaction (here: for ever)."""
    app, url = database
    api = Api(app.test_client())
    project = api.project("busy")
    first, second = (api.task(project["id"], instructions=f"task {i}")["id"] for i in (1, 2))
    answers: list[dict] = []
    with psycopg.connect(url) as holder:
        holder.execute("SELECT id FROM td_tasks WHERE id = %s FOR UPDATE", (first,))
        agent = threading.Thread(target=lambda: answers.append(
            api.next_task("w2", project["id"]).get_json()), daemon=True)
        started = time.monotonic()
        agent.start()
        agent.join(timeout=30)  # bounds a failure; the claim must not wait at all
        took = time.monotonic() - started
        holder.rollback()
    agent.join(timeout=30)
    assert answers and answers[0]["data"]["task"]["id"] == second, answers
    assert took < WITHIN_SECONDS, f"next-task waited {took:.1f} s for another task's lock"
    assert api.next_task("w3", project["id"]).get_json()["data"]["task"]["id"] == first


def test_eight_agents_of_one_project_each_get_their_own_task(database: tuple[Flask, str]
                                                             ) -> None:
    app, _ = database
    api = Api(app.test_client())
    project = api.project("crowd")
    api.post(f"/api/projects/{project['id']}/tasks/bulk",
             {"tasks": [{"instructions": f"t{i}"} for i in range(40)]})
    leased: dict[str, list[str]] = {}

    def agent(name: str) -> None:
        client = Api(app.test_client())
        leased[name] = []
        for _ in range(5):
            task = client.next_task(name, project["id"]).get_json()["data"]["task"]
            leased[name].append(task["id"])
            assert client.post(f"/api/tasks/{task['id']}/complete",
                               {"agentName": name, "result": "ok"}).status_code == 200

    threads = [threading.Thread(target=agent, args=(f"a{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    every = [task_id for ids in leased.values() for task_id in ids]
    assert len(every) == 40 and len(set(every)) == 40  # no task handed out twice
    stats = api.get(f"/api/projects/{project['id']}/stats").get_json()["data"]
    assert stats["project"]["stats"]["completedTasks"] == 40


def test_one_agents_two_requests_at_once_get_one_task(database: tuple[Flask, str]) -> None:
    """The unique index on running tasks per agent turns the second claim into a retry
    that finds the first one's task held."""
    app, _ = database
    api = Api(app.test_client())
    project = api.project("twice")
    api.post(f"/api/projects/{project['id']}/tasks/bulk",
             {"tasks": [{"instructions": f"t{i}"} for i in range(10)]})
    def claim(name: str, got: list[str]) -> None:
        answer = Api(app.test_client()).next_task(name, project["id"]).get_json()
        got.append(answer["data"]["task"]["id"])

    for round_number in range(5):
        got: list[str] = []
        threads = [threading.Thread(target=claim, args=(f"same-{round_number}", got))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(got) == 4 and len(set(got)) == 1, got
    running = api.get(f"/api/projects/{project['id']}/tasks?status=running").get_json()
    assert running["pagination"]["total"] == 5


def test_a_section_that_failed_midway_leaves_its_connection_usable(
        database: tuple[Flask, str]) -> None:
    """Write sections are pipelined: a statement sent after one that failed is never run,
    its PREPARE included. Each failed section must leave the pooled connection able to run
    every statement again (psycopg's prepared-statement cache cleared with the rollback),
    not answer "prepared statement does not exist" from then on."""
    app, url = database
    api = Api(app.test_client())
    project = api.project("refused")
    held, other = (api.task(project["id"], instructions=f"task {i}")["id"] for i in (1, 2))
    assert api.next_task("agent", project["id"]).get_json()["data"]["task"]["id"] == held
    storage = PostgresStorage(url)
    try:
        # Past psycopg's prepare threshold (5): some failures abort a statement's PREPARE.
        for _ in range(12):
            with pytest.raises(Contention), storage.project_tx(project["id"],
                                                               shared=True) as tx:
                task = tx.get_task(other)
                assert task is not None
                # A second running task for the agent: the unique index refuses it.
                tx.put_task(replace(task, status=TaskStatus.RUNNING, assigned_to="agent"))
                tx.get_task(held)  # sent behind the refused write, never run
            with storage.project_tx(project["id"], shared=True) as tx:
                task = tx.get_task(held)
                assert task is not None and task.status is TaskStatus.RUNNING
    finally:
        storage.close()
    assert api.get(f"/api/tasks/{other}").get_json()["data"]["status"] == "queued"
