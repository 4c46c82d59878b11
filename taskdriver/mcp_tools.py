"""The MCP face of TaskDriver: the original TaskDriver's tools and prompts, for LLM clients.

`taskdriver mcp` serves these over stdio (or streamable HTTP). Every tool is a call of
`taskdriver.client` against a running TaskDriver server; nothing here holds data. Tool and
parameter names are the original's (HamStudy/taskdriver-mcp), so prompts written for it keep
working; `projectId` takes a project id or name everywhere. A refused call is a tool result
with `isError` and the server's message, validation details and correlationId; nothing a
caller sends can end the process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .client import ApiError, Client

Result = TypeVar("Result")

INSTRUCTIONS = (
    "TaskDriver hands out work to LLM agents. To work: call get_next_task with your project "
    "and agent name, do what the task's instructions say, then call complete_task with your "
    "result (or fail_task with the error, canRetry true if another try may succeed). For "
    "long work call extend_lease before the lease runs out. Operators create projects, task "
    "types (templates with {{variables}}) and tasks, and watch get_project_stats.")


def _checked(call: Callable[[], Result]) -> Result:
    """Run a client call; a refusal or an unreachable server becomes a tool error."""
    try:
        return call()
    except ApiError as exc:
        details = "".join(f"\n- {d.get('field')}: {d.get('message')}"
                          for d in exc.validation_details)
        raise ToolError(exc.describe() + details) from None


def _json_argument(value: Any, name: str) -> Any:
    """Arguments the original took as JSON strings are accepted as JSON or as strings."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ToolError(f"{name} must be JSON") from None
    return value


def _fields(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def build_server(client: Client) -> MCPServer:
    """The MCP server with every tool and prompt, each a call through `client`."""
    server = MCPServer("taskdriver", instructions=INSTRUCTIONS, log_level="WARNING")
    agent = client.agent_name

    # -- projects -----------------------------------------------------------------------------

    @server.tool()
    def create_project(name: str, description: str = "", instructions: str = "",
                       maxRetries: int | None = None,
                       leaseDurationMinutes: float | None = None) -> dict[str, Any]:
        """Create a project: a queue of tasks with its own task types (operators only)."""
        config = _fields(defaultMaxRetries=maxRetries,
                         defaultLeaseDurationMinutes=leaseDurationMinutes)
        return dict(_checked(lambda: client.create_project(name, description, instructions,
                                                           config or None)))

    @server.tool()
    def list_projects(status: Literal["active", "closed", "all"] = "active",
                      includeClosed: bool = False, limit: int = 100, offset: int = 0
                      ) -> dict[str, Any]:
        """List projects with their task counts (an agent sees only its own)."""
        wanted = "all" if includeClosed else status
        return dict(_checked(lambda: client.list_projects(wanted, limit, offset)))

    @server.tool()
    def get_project(projectId: str) -> dict[str, Any]:
        """A project (by id or name) with its configuration and task counts."""
        return dict(_checked(lambda: client.get_project(projectId)))

    @server.tool()
    def update_project(projectId: str, name: str | None = None,
                       description: str | None = None, instructions: str | None = None,
                       status: Literal["active", "closed"] | None = None,
                       maxRetries: int | None = None,
                       leaseDurationMinutes: float | None = None) -> dict[str, Any]:
        """Change a project's fields; closing it stops new tasks and leases (operators only)."""
        config = _fields(defaultMaxRetries=maxRetries,
                         defaultLeaseDurationMinutes=leaseDurationMinutes)
        changes = _fields(name=name, description=description, instructions=instructions,
                          status=status, config=config or None)
        return dict(_checked(lambda: client.update_project(projectId, **changes)))

    @server.tool()
    def get_project_stats(projectId: str) -> dict[str, Any]:
        """Queue depth, counts by status, working agents and the last hour's outcomes."""
        return dict(_checked(lambda: client.project_stats(projectId)))

    # -- task types -------------------------------------------------------------------------

    @server.tool()
    def create_task_type(projectId: str, name: str, template: str | None = None,
                         variables: list[str] | None = None,
                         duplicateHandling: Literal["allow", "ignore", "fail"] | None = None,
                         maxRetries: int | None = None,
                         leaseDurationMinutes: float | None = None,
                         priority: int | None = None, retryDelaySeconds: float | None = None,
                         retryBackoff: Literal["fixed", "exponential"] | None = None,
                         maxRetryDelaySeconds: float | None = None) -> dict[str, Any]:
        """Create a task type: a prompt template with {{variables}} and its queue rules
        (default priority of its tasks; wait before a retry, fixed or doubling, capped)."""
        fields = _fields(template=template, variables=variables,
                         duplicateHandling=duplicateHandling, maxRetries=maxRetries,
                         leaseDurationMinutes=leaseDurationMinutes, priority=priority,
                         retryDelaySeconds=retryDelaySeconds, retryBackoff=retryBackoff,
                         maxRetryDelaySeconds=maxRetryDelaySeconds)
        return dict(_checked(lambda: client.create_task_type(projectId, name, **fields)))

    @server.tool()
    def list_task_types(projectId: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """A project's task types, oldest first."""
        return dict(_checked(lambda: client.list_task_types(projectId, limit, offset)))

    @server.tool()
    def get_task_type(taskTypeId: str) -> dict[str, Any]:
        """A task type with its template, variables and rules."""
        return dict(_checked(lambda: client.get_task_type(taskTypeId)))

    @server.tool()
    def update_task_type(projectId: str, taskType: str, template: str | None = None,
                         variables: list[str] | None = None,
                         duplicateHandling: Literal["allow", "ignore", "fail"] | None = None,
                         maxRetries: int | None = None,
                         leaseDurationMinutes: float | None = None) -> dict[str, Any]:
        """Change a task type (named by id or name in the project); tasks keep theirs."""
        fields = _fields(template=template, variables=variables,
                         duplicateHandling=duplicateHandling, maxRetries=maxRetries,
                         leaseDurationMinutes=leaseDurationMinutes)
        type_id = _checked(lambda: client.task_type_id(projectId, taskType))
        return dict(_checked(lambda: client.update_task_type(type_id, **fields)))

    # -- tasks ----------------------------------------------------------------------------------

    @server.tool()
    def create_task(projectId: str, type: str | None = None, instructions: str | None = None,
                    description: str | None = None,
                    variables: dict[str, str] | str | None = None,
                    batchId: str | None = None, priority: int | None = None,
                    delaySeconds: float | None = None, runAfter: str | None = None
                    ) -> dict[str, Any]:
        """Create one task; with a template type give its variables, else instructions.
        priority: higher first; delaySeconds or runAfter (RFC 3339): not before then."""
        type_id = _checked(lambda: client.task_type_id(projectId, type)) if type else None
        values = _json_argument(variables, "variables") if variables is not None else None
        return dict(_checked(lambda: client.create_task(
            projectId, instructions=instructions, type_id=type_id, variables=values,
            batch_id=batchId, description=description, priority=priority,
            delay_seconds=delaySeconds, run_after=runAfter)))

    @server.tool()
    def create_tasks_bulk(projectId: str, tasks: list[dict[str, Any]] | str,
                          batchId: str | None = None) -> dict[str, Any]:
        """Create up to 1,000 tasks at once: each {typeId?, instructions?, variables?,
        batchId?, description?, priority?, delaySeconds? or runAfter?}; each is created
        or refused on its own."""
        items = _json_argument(tasks, "tasks")
        if not isinstance(items, list):
            raise ToolError("tasks must be a list of task objects")
        return dict(_checked(lambda: client.create_tasks_bulk(projectId, items, batchId)))

    @server.tool()
    def list_tasks(projectId: str,
                   status: Literal["queued", "running", "completed", "failed", "all"] | None
                   = None, type: str | None = None, assignedTo: str | None = None,
                   batchId: str | None = None, limit: int = 50, offset: int = 0
                   ) -> dict[str, Any]:
        """List a project's tasks oldest first, filtered by status, type, agent or batch."""
        type_id = _checked(lambda: client.task_type_id(projectId, type)) if type else None
        return dict(_checked(lambda: client.list_tasks(
            projectId, status=None if status == "all" else status, assigned_to=assignedTo,
            batch_id=batchId, type_id=type_id, limit=limit, offset=offset)))

    @server.tool()
    def get_task(taskId: str) -> dict[str, Any]:
        """A task with its instructions, variables, result and every attempt."""
        return dict(_checked(lambda: client.get_task(taskId)))

    @server.tool()
    def get_batch_status(projectId: str, batchId: str) -> dict[str, Any]:
        """A batch's counts by status, and whether it is done."""
        return dict(_checked(lambda: client.batch_status(projectId, batchId)))

    @server.tool()
    def retry_task(taskId: str) -> dict[str, Any]:
        """Send a failed task back to the queue with a fresh retry budget (operators only)."""
        return dict(_checked(lambda: client.retry_task(taskId)))

    @server.tool()
    def retry_failed_tasks(projectId: str, batchId: str | None = None,
                           type: str | None = None) -> dict[str, Any]:
        """Send every failed task of a project (of a batch, of a type) back to the queue
        with a fresh retry budget (operators only)."""
        type_id = _checked(lambda: client.task_type_id(projectId, type)) if type else None
        return {"retried": _checked(lambda: client.retry_failed(projectId, batchId, type_id))}

    # -- the queue ------------------------------------------------------------------------------

    @server.tool()
    def get_next_task(projectId: str, agentName: str | None = None,
                      waitSeconds: float = 0) -> dict[str, Any]:
        """Lease the next task (or get back the one this agent already holds). With
        waitSeconds (up to 30) wait that long for one when the queue is empty."""
        name = agentName or agent
        if name is None:
            raise ToolError("agentName is required (this MCP server has no agent identity)")
        task = _checked(lambda: client.next_task(name, projectId, waitSeconds))
        if task is None:
            return {"task": None, "agentName": name,
                    "message": "No tasks available for assignment"}
        return {"task": dict(task), "agentName": name}

    @server.tool()
    def peek_next_task(projectId: str) -> dict[str, Any]:
        """How many tasks could be leased now, without leasing any."""
        available = _checked(lambda: client.peek_next_task(projectId))
        return {"projectId": projectId, "tasksAvailable": available}

    @server.tool()
    def list_active_agents(projectId: str) -> dict[str, Any]:
        """Agents holding a live lease in the project, with their task and lease expiry."""
        return {"agents": [dict(a) for a in _checked(lambda: client.active_agents(projectId))]}

    @server.tool()
    def complete_task(taskId: str, result: str, agentName: str | None = None,
                      projectId: str | None = None,
                      outputs: dict[str, Any] | str | None = None) -> dict[str, Any]:
        """Report a task done with its result (and structured outputs); safe to repeat."""
        values = _json_argument(outputs, "outputs") if outputs is not None else None
        return dict(_checked(lambda: client.complete_task(taskId, result, values,
                                                          agentName or agent)))

    @server.tool()
    def fail_task(taskId: str, error: str, agentName: str | None = None,
                  projectId: str | None = None, canRetry: bool = True) -> dict[str, Any]:
        """Report a task failed; with canRetry it goes back to the queue while retries last."""
        return dict(_checked(lambda: client.fail_task(taskId, error, canRetry,
                                                      agentName or agent)))

    @server.tool()
    def extend_lease(taskId: str, minutes: float, agentName: str | None = None
                     ) -> dict[str, Any]:
        """Extend the lease on a task this agent is working on by `minutes`."""
        return dict(_checked(lambda: client.extend_lease(taskId, minutes, agentName or agent)))

    @server.tool()
    def extend_task_lease(taskId: str, extensionMinutes: float) -> dict[str, Any]:
        """Extend a running task's lease by `extensionMinutes` (for long work)."""
        return dict(_checked(lambda: client.extend_lease(taskId, extensionMinutes, agent)))

    # -- operations -----------------------------------------------------------------------------

    @server.tool()
    def health_check() -> dict[str, Any]:
        """Whether the TaskDriver server and its storage are healthy."""
        return _checked(client.health)

    @server.tool()
    def get_lease_stats(projectId: str) -> dict[str, Any]:
        """Running tasks, expired leases not yet reclaimed, and tasks by status."""
        stats = _checked(lambda: client.project_stats(projectId))
        agents = _checked(lambda: client.active_agents(projectId))
        counts = stats["project"]["stats"]
        running = counts["runningTasks"]
        return {"projectId": stats["project"]["id"], "projectName": stats["project"]["name"],
                "stats": {"totalRunningTasks": running, "expiredTasks": running - len(agents),
                          "tasksByStatus": {"queued": counts["queuedTasks"],
                                            "running": running,
                                            "completed": counts["completedTasks"],
                                            "failed": counts["failedTasks"]}}}

    @server.tool()
    def cleanup_expired_leases(projectId: str) -> dict[str, Any]:
        """Reclaim the project's expired leases now, so their tasks can be leased again."""
        return dict(_checked(lambda: client.cleanup_leases(projectId)))

    # -- prompts ----------------------------------------------------------------------------

    @server.prompt()
    def setup_project(projectName: str, workItems: str, goal: str = "") -> str:
        """Set up a TaskDriver project for a list of work items."""
        return (f"Set up a TaskDriver project named {projectName!r} for this work"
                f"{': ' + goal if goal else ''}.\n\n1. create_project with that name and "
                "instructions every agent should follow.\n2. Find what the items have in "
                "common and create_task_type with a template using {{variables}} for what "
                "differs (duplicateHandling 'ignore' if an item may appear twice).\n3. "
                "create_tasks_bulk with one task per item (variables only), up to 1,000 a "
                "call.\n4. get_project_stats to confirm the count.\n\nThe work items:\n"
                f"{workItems}")

    @server.prompt()
    def work_queue(projectId: str, agentName: str) -> str:
        """Work through a project's queue as an agent."""
        return (f"You are agent {agentName!r} working the TaskDriver project {projectId!r}. "
                "Repeat until get_next_task returns no task:\n1. get_next_task (projectId, "
                "agentName, waitSeconds 30).\n2. Do exactly what the task's instructions "
                "say.\n3. complete_task with your result (put structured findings in "
                "outputs), or fail_task with the error; canRetry true when another try may "
                "succeed, false when the task itself is wrong.\nIf a task takes long, call "
                "extend_lease before its leaseExpiresAt. Never work on two tasks at once.")

    @server.prompt()
    def report_progress(projectId: str) -> str:
        """Report how a project is going."""
        return (f"Report on the TaskDriver project {projectId!r}: call get_project_stats, "
                "list_active_agents and list_tasks with status 'failed' (limit 20). Say how "
                "far along it is (completed of total, queued, running), how fast it moves "
                "(completions in the last hour, average task time), who is working, and the "
                "most common failure reasons with a suggestion for each (retry_task when a "
                "failure was transient).")

    return server
