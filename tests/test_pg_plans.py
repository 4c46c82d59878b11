"""PostgreSQL query plans: the queue's queries are served by indexes and counters, whatever
the depth of the queue.

Each test loads enough tasks that the planner prefers an index only where one fits, then
reads `EXPLAIN (FORMAT JSON)` of the named queries and checks the plan's nodes (their
types, the indexes and tables they read): a plan's structure, not its wording.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import Api, close_app, make_app, postgres_schema, postgres_unavailable

pytestmark = pytest.mark.skipif(postgres_unavailable() is not None,
                                reason=postgres_unavailable() or "")

Plan = dict[str, Any]


def analyze(connection: psycopg.Connection[Any]) -> None:
    """Statistics for every table of the test's schema (autovacuum may be off): the
    planner then plans for the rows loaded, not for empty tables."""
    tables = [row[0] for row in connection.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
    for table in tables:
        connection.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def explain(connection: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> Plan:
    """The plan's top node, as `EXPLAIN (FORMAT JSON)` gives it."""
    row = connection.execute("EXPLAIN (FORMAT JSON) " + query, params).fetchone()
    assert row is not None
    top: Plan = row[0][0]["Plan"]
    return top


def explain_generic(connection: psycopg.Connection[Any], query: str, params: dict[str, Any]
                    ) -> Plan:
    """The plan of the query prepared (as psycopg prepares a query run five times) once
    PostgreSQL settles on its generic plan, made without the parameters' values."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    connection.execute("SET plan_cache_mode = force_generic_plan")
    connection.execute("PREPARE plan_probe AS " + re.sub(r"%\((\w+)\)s", number, query))
    try:
        row = psycopg.ClientCursor(connection).execute(
            f"EXPLAIN (FORMAT JSON) EXECUTE plan_probe({', '.join(['%s'] * len(names))})",
            [params[name] for name in names]).fetchone()
    finally:
        connection.execute("DEALLOCATE plan_probe")
        connection.execute("RESET plan_cache_mode")
    assert row is not None
    top: Plan = row[0][0]["Plan"]
    return top


def nodes(plan: Plan) -> Iterator[Plan]:
    """Every node of the plan tree, its sub-plans and init-plans included."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def node_types(plan: Plan) -> set[str]:
    return {node["Node Type"] for node in nodes(plan)}


def index_names(plan: Plan) -> set[str]:
    return {node["Index Name"] for node in nodes(plan) if "Index Name" in node}


def seq_scanned(plan: Plan) -> set[str]:
    """The tables the plan reads row by row."""
    return {node["Relation Name"] for node in nodes(plan) if node["Node Type"] == "Seq Scan"}


def sorts(plan: Plan) -> list[str]:
    """The plan's sort nodes (Sort, Incremental Sort): none where an index gives the order."""
    return [kind for kind in node_types(plan) if "Sort" in kind]


def tables_sorted(plan: Plan) -> set[str]:
    """The tables whose rows a sort node takes in (a sort of a few rows already picked,
    such as one head per type, reads none)."""
    return {node["Relation Name"] for sort in nodes(plan) if "Sort" in sort["Node Type"]
            for node in nodes(sort) if "Relation Name" in node}


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
            analyze(connection)
            plan = explain(connection, QUERIES["next_due"],
                           {"project_id": project["id"], "now": time.time()})
        assert "td_tasks_ready" in index_names(plan), plan
        assert not sorts(plan), plan  # the index gives the order: no sort of the queue


def test_stats_batches_and_peek_are_served_by_indexes_and_counters(tmp_path: Path) -> None:
    """EXPLAIN of every query behind stats, batch progress, peek and the claim on 20,000
    tasks: none reads the project's tasks one by one (no sequential scan of td_tasks)."""
    from taskdriver.storage.postgres import QUERIES

    with postgres_schema() as url:
        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)
        api = Api(app.test_client())
        project = api.project("depth")
        for start in range(0, 20_000, 1000):
            response = api.post(f"/api/projects/{project['id']}/tasks/bulk", {"tasks": [
                {"instructions": "x", "batchId": f"b{i % 10}",
                 **({"delaySeconds": 3600} if i % 50 == 0 else {})}
                for i in range(start, start + 1000)]})
            assert response.status_code == 201, response.get_json()
        close_app(app)
        params = {"project_id": project["id"], "now": time.time(), "batch_id": "b3",
                  "since": time.time() - 3600, "agent_name": "a"}
        with psycopg.connect(url) as connection:
            analyze(connection)
            for name in ("status_counts", "batch_counts", "delayed_count", "next_run_after",
                         "running_tasks", "held_and_expired", "completed_since", "failed_since",
                         "claim_next", "expired_leases"):
                plan = explain(connection, QUERIES[name], params)
                assert "td_tasks" not in seq_scanned(plan), (name, plan)
                if name == "claim_next":  # the index gives the order: the queue is not sorted
                    assert "td_tasks_ready" in index_names(plan) and not sorts(plan), plan


def test_a_claim_passing_over_a_full_type_probes_one_head_per_type(tmp_path: Path) -> None:
    """EXPLAIN of the claim with one of two types at its maxConcurrent (issue 22), and of
    "is this type in use", on 20,000 queued tasks of the two types and a few untyped ones:
    each type's head and the untyped head are one probe of their index, and nothing sorts
    or scans the queue, in the plan of the first runs and in the generic plan of later
    ones alike."""
    from taskdriver.storage.postgres import QUERIES

    with postgres_schema() as url:
        app = make_app(tmp_path / "data", TASKDRIVER_STORAGE_URL=url)
        api = Api(app.test_client())
        project = api.project("limited")
        limited, free = (api.post(f"/api/projects/{project['id']}/task-types",
                                  {"name": name, **fields}).get_json()["data"]["id"]
                         for name, fields in (("limited", {"maxConcurrent": 1}), ("free", {})))
        for start in range(0, 20_000, 1000):
            response = api.post(f"/api/projects/{project['id']}/tasks/bulk", {"tasks": [
                {"instructions": "x", "priority": i % 3,
                 **({"typeId": (limited, free)[i % 2]} if i % 100 else {})}
                for i in range(start, start + 1000)]})
            assert response.status_code == 201, response.get_json()
        close_app(app)
        params = {"project_id": project["id"], "now": time.time(), "excluded": [limited],
                  "type_id": free}
        with psycopg.connect(url) as connection:
            analyze(connection)
            for plan_of in (explain, explain_generic):
                claim = plan_of(connection, QUERIES["claim_next_excluding"], params)
                assert "td_tasks" not in seq_scanned(claim), claim
                assert {"td_tasks_ready_by_type", "td_tasks_ready_untyped"} <= index_names(
                    claim), claim
                assert "td_tasks" not in tables_sorted(claim), claim  # only the heads
                in_use = plan_of(connection, QUERIES["task_type_in_use"], params)
                assert "td_tasks" not in seq_scanned(in_use), in_use
                assert not sorts(in_use), in_use
                # Running tasks are as many as the fleet's agents: any index of them does.
                assert {"td_tasks_ready_by_type", "td_tasks_waiting_by_type"} <= index_names(
                    in_use), in_use
