"""`taskdriver mcp` as a subprocess, spoken to with the MCP SDK's own clients, against a
real gunicorn server: the tools' listing (annotations, schemas), a call of every tool checked
against its outputSchema, arguments, a down server, and the guarded HTTP transport."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import pytest
import requests
from mcp import Client as McpClient
from mcp import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from taskdriver import __version__
from taskdriver.client import Client

from conftest import ADMIN_TOKEN
from live_server import LiveServer, free_port, serving

pytestmark = pytest.mark.slow
TASKDRIVER = str(Path(sys.executable).parent / "taskdriver")
ORIGINAL_TOOLS = {
    "create_project", "list_projects", "get_project", "update_project", "get_project_stats",
    "create_task_type", "list_task_types", "get_task_type", "update_task_type", "create_task",
    "create_tasks_bulk", "list_tasks", "get_task", "get_next_task", "peek_next_task",
    "list_active_agents", "complete_task", "fail_task", "extend_lease", "extend_task_lease",
    "health_check", "get_lease_stats", "cleanup_expired_leases"}
ADDED_TOOLS = {"get_batch_status", "retry_task", "retry_failed_tasks", "cancel_task",
               "cancel_tasks", "report_progress"}
READ_ONLY = {"list_projects", "get_project", "get_project_stats", "list_task_types",
             "get_task_type", "list_tasks", "get_task", "get_batch_status", "peek_next_task",
             "list_active_agents", "health_check", "get_lease_stats"}
OVERWRITING = {"update_project", "update_task_type", "cancel_task", "cancel_tasks"}
REPEATABLE = {"get_next_task", "complete_task", "cleanup_expired_leases"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("mcp") / "data", 2,
                 TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as live:
        yield live


def stdio(url: str, *args: str, token: str | None = ADMIN_TOKEN) -> StdioServerParameters:
    env = {**os.environ, "TASKDRIVER_URL": url}
    env.pop("TASKDRIVER_TOKEN", None)
    if token:
        env["TASKDRIVER_TOKEN"] = token
    return StdioServerParameters(command=TASKDRIVER, args=["mcp", *args], env=env)


def session(params: Any, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Open one MCP session, make the calls in order, return their results."""
    async def go() -> list[Any]:
        async with McpClient(params) as client:
            return [await (client.list_tools() if name == "tools/list"
                           else client.list_prompts() if name == "prompts/list"
                           else client.call_tool(name, arguments))
                    for name, arguments in calls]
    return asyncio.run(go())


def described(schema: Any) -> list[str]:
    """The input properties (nested ones too) that have no description."""
    if isinstance(schema, list):
        return [name for item in schema for name in described(item)]
    if not isinstance(schema, dict):
        return []
    bare = [name for name, prop in schema.get("properties", {}).items()
            if not prop.get("description")]
    return bare + [name for key, value in schema.items() if key != "properties"
                   for name in described(value)] + [
        name for prop in schema.get("properties", {}).values() for name in described(prop)]


def test_the_original_tools_are_listed_with_their_schemas(server: LiveServer) -> None:
    tools, prompts = session(stdio(server.url), [("tools/list", {}), ("prompts/list", {})])
    names = {tool.name for tool in tools.tools}
    assert names >= ORIGINAL_TOOLS | ADDED_TOOLS
    by_name = {tool.name: tool for tool in tools.tools}
    next_task = by_name["get_next_task"].input_schema
    assert next_task["required"] == ["projectId"]
    assert {"projectId", "agentName", "waitSeconds"} <= set(next_task["properties"])
    assert all(tool.description for tool in tools.tools)
    assert {p.name for p in prompts.prompts} == {"setup_project", "work_queue",
                                                 "report_progress"}


def test_every_tool_has_hints_described_arguments_and_an_output_schema(
        server: LiveServer) -> None:
    (tools,) = session(stdio(server.url), [("tools/list", {})])
    for tool in tools.tools:
        hints = tool.annotations
        assert hints is not None, tool.name
        assert hints.open_world_hint is False, tool.name
        assert hints.read_only_hint is (tool.name in READ_ONLY), tool.name
        assert bool(hints.destructive_hint) is (tool.name in OVERWRITING), tool.name
        if tool.name in REPEATABLE | OVERWRITING:
            assert hints.idempotent_hint is True, tool.name
        output = tool.output_schema
        assert output and output["type"] == "object" and output["properties"], tool.name
        jsonschema.Draft202012Validator.check_schema(output)
        assert described(tool.input_schema) == [], tool.name
        assert tool.input_schema.get("additionalProperties") is False, tool.name
    by_name = {tool.name: tool for tool in tools.tools}
    assert set(by_name["list_tasks"].output_schema["properties"]) >= {"items", "total"}
    assert by_name["get_next_task"].output_schema["properties"]["id"]


def test_an_agent_cycle_through_mcp(server: LiveServer) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("mcp-cycle", config={"defaultMaxRetries": 2})
    first = operator.create_task(project["id"], instructions="summarise")
    second = operator.create_task(project["id"], instructions="flaky")
    results = session(stdio(server.url, "--project", "mcp-cycle", "--agent", "llm-1",
                            token=None), [
        ("get_next_task", {"projectId": "mcp-cycle"}),
        ("complete_task", {"taskId": first["id"], "result": "a summary",
                           "outputs": {"words": 2}}),
        ("get_next_task", {"projectId": "mcp-cycle"}),
        ("fail_task", {"taskId": second["id"], "error": "rate limited", "canRetry": True}),
    ])
    assert not any(result.is_error for result in results), [r.content for r in results]
    assert results[0].structured_content["task"]["id"] == first["id"]
    assert results[0].structured_content["agentName"] == "llm-1"
    done = operator.get_task(first["id"])  # checked over HTTP
    assert done["status"] == "completed" and done["result"] == "a summary"
    assert done["outputs"] == {"words": 2} and done["attempts"][-1]["agentName"] == "llm-1"
    retried = operator.get_task(second["id"])
    assert retried["status"] == "queued" and retried["retryCount"] == 1
    assert retried["error"] == "rate limited"


def test_an_agent_session_is_refused_another_project(server: LiveServer) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    operator.create_project("mcp-mine")
    other = operator.create_project("mcp-theirs")
    (refused,) = session(stdio(server.url, "--project", "mcp-mine", "--agent", "a",
                               token=None), [("get_project", {"projectId": other["id"]})])
    assert refused.is_error and "HTTP 403" in refused.content[0].text
    assert "correlationId" in refused.content[0].text


def test_bad_arguments_are_tool_errors_and_the_server_lives_on(server: LiveServer) -> None:
    results = session(stdio(server.url), [
        ("get_next_task", {}),  # missing projectId
        ("create_task", {"projectId": "nope", "instructions": "x"}),
        ("create_tasks_bulk", {"projectId": "nope", "tasks": "[not json"}),
        ("create_project", {"name": "bad name!"}),
        ("health_check", {}),
    ])
    assert all(result.is_error for result in results[:4])
    assert "Project name can only contain" in results[3].content[0].text
    assert not results[4].is_error and results[4].structured_content["status"] == "healthy"


def test_a_stopped_server_is_a_clear_tool_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    results = session(stdio(url), [("list_projects", {}), ("list_projects", {})])
    for result in results:
        assert result.is_error and f"cannot reach the TaskDriver server at {url}" in \
            result.content[0].text


def checked(tools: Any, results: list[tuple[str, Any]]) -> dict[str, Any]:
    """Each result is a success whose structuredContent validates against its tool's
    outputSchema and whose text block is the same JSON; the contents, by tool name."""
    schemas = {tool.name: tool.output_schema for tool in tools.tools}
    contents = {}
    for name, result in results:
        assert not result.is_error, (name, result.content)
        jsonschema.validate(result.structured_content, schemas[name])
        assert json.loads(result.content[0].text) == result.structured_content, name
        contents.setdefault(name, result.structured_content)
    return contents


def test_every_tool_answers_what_its_output_schema_says(server: LiveServer) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("mcp-every", instructions="Answer in one line.",
                                      config={"defaultMaxRetries": 0})
    kind = operator.create_task_type(project["id"], "review", template="Review {{file}}",
                                     variables=["file"])
    first = operator.create_task(project["id"], instructions="first", batch_id="b1")
    p, agent = "mcp-every", {"agentName": "bot"}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("tools/list", {}),
        ("create_project", {"name": "mcp-every-2", "maxRetries": 1}),
        ("list_projects", {"status": "all"}), ("get_project", {"projectId": p}),
        ("update_project", {"projectId": "mcp-every-2", "description": "changed"}),
        ("get_project_stats", {"projectId": p}),
        ("create_task_type", {"projectId": p, "name": "plain", "priority": 1}),
        ("list_task_types", {"projectId": p}),
        ("get_task_type", {"taskTypeId": kind["id"]}),  # the original's spelling
        ("update_task_type", {"projectId": p, "taskType": "plain", "maxRetries": 0}),
        ("create_task", {"projectId": p, "type": "review", "variables": {"file": "a.py"},
                         "batchId": "b2", "delaySeconds": 3600}),
        ("create_tasks_bulk", {"projectId": p, "batchId": "b2", "tasks": [
            {"typeId": "review", "variables": {"file": "b.py"}, "delaySeconds": 3600}]}),
        ("list_tasks", {"projectId": p, "typeId": "review"}),
        ("get_task", {"taskId": first["id"]}),
        ("get_batch_status", {"projectId": p, "batchId": "b1"}),
        ("peek_next_task", {"projectId": p}),
        ("get_next_task", {"projectId": p, **agent}),
        ("list_active_agents", {"projectId": p}),
        ("extend_lease", {"taskId": first["id"], "minutes": 5, **agent}),
        ("extend_task_lease", {"taskId": first["id"], "extensionMinutes": 5, **agent}),
        ("fail_task", {"taskId": first["id"], "error": "no", "canRetry": False, **agent}),
        ("retry_failed_tasks", {"projectId": p, "batchId": "b1"}),
        ("get_next_task", {"projectId": p, **agent}),
        ("complete_task", {"taskId": first["id"], "result": "done", **agent}),
        ("complete_task", {"taskId": first["id"], "result": "done", **agent}),  # repeat
        ("get_next_task", {"projectId": p, **agent}),  # nothing due: no task
        ("health_check", {}), ("get_lease_stats", {"projectId": p}),
        ("cleanup_expired_leases", {"projectId": p}),
    ]
    tools, *results = session(stdio(server.url), calls)
    contents = checked(tools, [(name, result) for (name, _), result
                               in zip(calls[1:], results, strict=True)])
    assert {tool.name for tool in tools.tools} == set(contents) | {
        "retry_task", "cancel_task", "cancel_tasks", "report_progress"}  # tested apart
    lease = contents["get_next_task"]
    assert lease["id"] == lease["task"]["id"] == first["id"] and lease["agentName"] == "bot"
    assert results[-4].structured_content == {"id": None, "task": None, "agentName": "bot",
                                              "message": "No tasks available for assignment"}
    assert contents["retry_failed_tasks"] == {"retried": 1}
    assert contents["list_tasks"]["total"] == 2


def test_get_next_task_gives_the_id_on_top_and_the_projects_instructions(
        server: LiveServer) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("mcp-lead", instructions="Answer in one line.")
    task = operator.create_task(project["id"], instructions="x")
    (lease,) = session(stdio(server.url, "--project", "mcp-lead", "--agent", "bot",
                             token=None), [("get_next_task", {"projectId": "mcp-lead"})])
    content = lease.structured_content
    assert content["id"] == content["task"]["id"] == task["id"]
    rest = operator.next_lease("bot", project["id"])  # the same lease, resumed, as REST has it
    assert rest is not None and rest["task"]["id"] == task["id"]
    assert content["project"] == rest["project"] == {
        "id": project["id"], "name": "mcp-lead", "instructions": "Answer in one line."}


def test_retry_task_answers_what_its_output_schema_says(server: LiveServer) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("mcp-retry", config={"defaultMaxRetries": 0})
    task = operator.create_task(project["id"], instructions="x")
    operator.next_task("bot", project["id"])
    operator.fail_task(task["id"], "broken", can_retry=False, agent_name="bot")
    tools, retried = session(stdio(server.url), [("tools/list", {}),
                                                 ("retry_task", {"taskId": task["id"]})])
    assert checked(tools, [("retry_task", retried)])["retry_task"]["status"] == "queued"


def test_the_fleet_control_tools_answer_what_their_output_schemas_say(
        server: LiveServer) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("mcp-controls")
    kind = operator.create_task_type(project["id"], "kind")
    tasks = [operator.create_task(project["id"], instructions="x", batch_id="b",
                                  type_id=kind["id"]) for _ in range(3)]
    held = operator.next_task("bot", project["id"])
    assert held is not None
    calls = [("tools/list", {}),
             ("report_progress", {"taskId": held["id"], "progress": 50, "message": "half",
                                  "agentName": "bot"}),
             ("update_task_type", {"projectId": "mcp-controls", "typeId": "kind",
                                   "maxConcurrent": 2,
                                   "rateLimit": {"count": 5, "perSeconds": 10},
                                   "paused": True}),
             ("update_project", {"projectId": "mcp-controls", "paused": True}),
             ("cancel_task", {"taskId": held["id"], "reason": "enough"}),
             ("cancel_tasks", {"projectId": "mcp-controls", "batchId": "b"}),
             ("create_task_type", {"projectId": "mcp-controls", "name": "open",
                                   "maxConcurrent": 0})]
    tools, *results = session(stdio(server.url), calls)
    contents = checked(tools, [(name, result) for (name, _), result
                               in zip(calls[1:], results, strict=True)])
    assert (contents["report_progress"]["progress"],
            contents["report_progress"]["progressMessage"]) == (50, "half")
    kind_now = contents["update_task_type"]
    assert (kind_now["maxConcurrent"], kind_now["rateLimit"], kind_now["paused"]) == (
        2, {"count": 5, "perSeconds": 10}, True)
    assert contents["update_project"]["paused"] is True
    assert contents["cancel_task"]["status"] == "cancelled"
    assert contents["cancel_tasks"] == {"cancelled": len(tasks) - 1}
    assert contents["create_task_type"]["maxConcurrent"] is None


def test_unknown_and_wrong_arguments_are_named_one_line_each(server: LiveServer) -> None:
    (unknown, wrong, bulk) = session(stdio(server.url), [
        ("create_task", {"projectId": "nope", "instructions": "x", "typo": 1}),
        ("create_project", {"name": 5, "maxRetries": "many"}),
        ("create_tasks_bulk", {"projectId": "nope", "tasks": [{"instruction": "x"}]}),
    ])
    assert unknown.is_error
    text = unknown.content[0].text
    assert "- typo: unknown argument (this tool takes: " in text and "typeId" in text
    lines = wrong.content[0].text.splitlines()
    assert wrong.is_error and lines[0] == "Invalid arguments for create_project:"
    assert [line.split(":")[0] for line in lines[1:]] == ["- name", "- maxRetries"]
    assert "pydantic" not in wrong.content[0].text and "http" not in wrong.content[0].text
    assert bulk.is_error and "- tasks.0.instruction: unknown argument" in bulk.content[0].text


def test_a_down_server_is_a_tool_error_within_five_seconds() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    async def go() -> tuple[Any, float]:
        async with McpClient(stdio(url)) as client:
            started = time.monotonic()
            result = await client.call_tool("get_project", {"projectId": "anything"})
            return result, time.monotonic() - started
    result, seconds = asyncio.run(go())
    assert result.is_error and f"cannot reach the TaskDriver server at {url}" in \
        result.content[0].text
    assert seconds < 5, seconds


def test_the_server_names_its_version(server: LiveServer) -> None:
    async def go() -> Any:
        async with McpClient(stdio(server.url)) as client:
            return client.server_info
    info = asyncio.run(go())
    assert info is not None and info.name == "taskdriver" and info.version == __version__


@contextmanager
def http_mcp(server: LiveServer, *args: str) -> Iterator[str]:
    """`taskdriver mcp --transport http` with the operator's token; yields its /mcp URL."""
    port = free_port()
    env = {**os.environ, "TASKDRIVER_URL": server.url, "TASKDRIVER_TOKEN": ADMIN_TOKEN}
    env.pop("TASKDRIVER_MCP_TOKEN", None)
    process = subprocess.Popen([TASKDRIVER, "mcp", "--transport", "http", "--port", str(port),
                                *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/mcp", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the MCP HTTP server did not start"
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.communicate(timeout=30)


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "probe", "version": "1"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}


def test_streamable_http_needs_the_token_and_a_known_origin(server: LiveServer) -> None:
    with http_mcp(server, "--auth-token", "mcp-secret") as url:
        bare = requests.post(url, json=INITIALIZE, headers=MCP_HEADERS, timeout=10)
        assert bare.status_code == 401 and bare.headers["WWW-Authenticate"] == "Bearer"
        wrong = requests.post(url, json=INITIALIZE, timeout=10, headers={
            **MCP_HEADERS, "Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert wrong.status_code == 401  # --auth-token replaces the operator's token
        foreign = requests.post(url, json=INITIALIZE, timeout=10, headers={
            **MCP_HEADERS, "Authorization": "Bearer mcp-secret",
            "Origin": "http://evil.example"})
        assert foreign.status_code == 403
        own = requests.post(url, json=INITIALIZE, timeout=10, headers={
            **MCP_HEADERS, "Authorization": "Bearer mcp-secret",
            "Origin": "http://localhost:5173"})
        assert own.status_code == 200


def test_streamable_http(server: LiveServer) -> None:
    with http_mcp(server) as url:  # the operator's own token guards it
        async def go() -> list[Any]:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            async with http, McpClient(streamable_http_client(url, http_client=http)) as client:
                return [await client.list_tools(), await client.call_tool("health_check", {})]
        tools, health = asyncio.run(go())
        assert {tool.name for tool in tools.tools} >= ORIGINAL_TOOLS
        assert health.structured_content["status"] == "healthy"


def test_http_on_another_address_needs_a_token() -> None:
    env = {key: value for key, value in os.environ.items()
           if key not in ("TASKDRIVER_TOKEN", "TASKDRIVER_MCP_TOKEN")}
    refused = subprocess.run([TASKDRIVER, "mcp", "--transport", "http", "--host", "0.0.0.0",
                              "--project", "p", "--agent", "a"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2
    assert "refusing to serve MCP on 0.0.0.0 without a token" in refused.stderr
