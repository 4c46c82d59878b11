"""`taskdriver mcp` as a subprocess, spoken to with the MCP SDK's own clients, against a
real gunicorn server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mcp import Client as McpClient
from mcp import StdioServerParameters

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


def test_the_original_tools_are_listed_with_their_schemas(server: LiveServer) -> None:
    tools, prompts = session(stdio(server.url), [("tools/list", {}), ("prompts/list", {})])
    names = {tool.name for tool in tools.tools}
    assert ORIGINAL_TOOLS | {"get_batch_status", "retry_task"} <= names
    by_name = {tool.name: tool for tool in tools.tools}
    next_task = by_name["get_next_task"].input_schema
    assert next_task["required"] == ["projectId"]
    assert {"projectId", "agentName", "waitSeconds"} <= set(next_task["properties"])
    assert all(tool.description for tool in tools.tools)
    assert {p.name for p in prompts.prompts} == {"setup_project", "work_queue",
                                                 "report_progress"}


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


def test_streamable_http(server: LiveServer) -> None:
    port = free_port()
    env = {**os.environ, "TASKDRIVER_URL": server.url, "TASKDRIVER_TOKEN": ADMIN_TOKEN}
    process = subprocess.Popen([TASKDRIVER, "mcp", "--transport", "http", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
        (tools, health) = session(f"http://127.0.0.1:{port}/mcp",
                                  [("tools/list", {}), ("health_check", {})])
        assert {tool.name for tool in tools.tools} >= ORIGINAL_TOOLS
        assert health.structured_content["status"] == "healthy"
    finally:
        process.terminate()
        process.communicate(timeout=30)
