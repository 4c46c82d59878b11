"""Queue tools: what an agent calls to lease a task, report it, and keep its lease."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ...client import Client
from .. import results
from ..registry import ADDS, JSON_TEXT, READS, REPEATABLE, Arguments, ToolRefusal, Tools
from .common import AgentName, ExtensionMinutes, IgnoredProject, OneProject, ProjectRef, TaskRef

tools = Tools()
NO_TASK = "No tasks available for assignment"


def agent_of(client: Client, name: str | None) -> str:
    """The agent a call is for: the one named, or the one this server logged in as."""
    agent = name or client.agent_name
    if agent is None:
        raise ToolRefusal("agentName is required (this MCP server has no agent identity)")
    return agent


class NextTask(Arguments):
    projectId: ProjectRef
    agentName: AgentName = None
    waitSeconds: float = Field(0, ge=0, le=30, description="When the queue is empty, wait "
                                                          "up to this many seconds for a task.")


@tools.tool(NextTask, results.Lease, REPEATABLE)
def get_next_task(client: Client, args: NextTask) -> Any:
    """Lease the next task (or get back the one this agent already holds), with the
    project's instructions. With waitSeconds (up to 30) wait that long for one when the
    queue is empty."""
    agent = agent_of(client, args.agentName)
    lease = client.next_lease(agent, args.projectId, args.waitSeconds)
    if lease is None:
        return {"id": None, "task": None, "agentName": agent, "message": NO_TASK}
    answer = {"id": lease["task"]["id"], "task": lease["task"], "agentName": agent}
    if lease.get("project"):
        answer["project"] = {key: lease["project"][key]
                             for key in ("id", "name", "instructions")}
    return answer


@tools.tool(OneProject, results.Peek, READS)
def peek_next_task(client: Client, args: OneProject) -> Any:
    """How many tasks could be leased now, without leasing any."""
    return {"projectId": args.projectId,
            "tasksAvailable": client.peek_next_task(args.projectId)}


@tools.tool(OneProject, results.ActiveAgents, READS)
def list_active_agents(client: Client, args: OneProject) -> Any:
    """Agents holding a live lease in the project, with their task and lease expiry."""
    return {"agents": client.active_agents(args.projectId)}


class CompleteTask(Arguments):
    taskId: TaskRef
    result: str = Field(description="The task's result, as the instructions asked for it.")
    outputs: Annotated[dict[str, Any] | None, JSON_TEXT] = Field(
        None, description="Structured findings, as a JSON object.")
    agentName: AgentName = None
    projectId: IgnoredProject = None


@tools.tool(CompleteTask, results.Task, REPEATABLE)
def complete_task(client: Client, args: CompleteTask) -> Any:
    """Report a task done with its result (and structured outputs); safe to repeat."""
    return client.complete_task(args.taskId, args.result, args.outputs,
                                args.agentName or client.agent_name)


class FailTask(Arguments):
    taskId: TaskRef
    error: str = Field(description="What went wrong, for whoever looks at the task next.")
    canRetry: bool = Field(True, description="true when another try may succeed (it goes "
                                             "back to the queue while retries last); false "
                                             "when the task itself is wrong.")
    agentName: AgentName = None
    projectId: IgnoredProject = None


@tools.tool(FailTask, results.Task, ADDS)
def fail_task(client: Client, args: FailTask) -> Any:
    """Report a task failed; with canRetry it goes back to the queue while retries last."""
    return client.fail_task(args.taskId, args.error, args.canRetry,
                            args.agentName or client.agent_name)


class ExtendLease(Arguments):
    taskId: TaskRef
    extensionMinutes: ExtensionMinutes
    agentName: AgentName = None


@tools.tool(ExtendLease, results.Task, ADDS)
def extend_lease(client: Client, args: ExtendLease) -> Any:
    """Extend the lease on a task this agent is working on (for long work)."""
    return client.extend_lease(args.taskId, args.extensionMinutes,
                               args.agentName or client.agent_name)


class ReportProgress(Arguments):
    taskId: TaskRef
    progress: float | None = Field(None, ge=0, le=100, description="How far the task got, "
                                                                   "0-100.")
    message: str | None = Field(None, max_length=1000, description="What it is doing now.")
    extensionMinutes: float | None = Field(None, ge=0.05, le=1440, description=(
        "Also extend the lease by this many minutes, as extend_lease does."))
    agentName: AgentName = None


@tools.tool(ReportProgress, results.Task, ADDS)
def report_progress(client: Client, args: ReportProgress) -> Any:
    """Tell how far a task this agent holds got (progress 0-100 and/or a message; give at
    least one of progress, message, extensionMinutes). A cancelled task answers 409."""
    if args.progress is None and args.message is None and args.extensionMinutes is None:
        raise ToolRefusal("give progress, message or extensionMinutes")
    return client.report_progress(args.taskId, args.progress, args.message,
                                  args.extensionMinutes, args.agentName or client.agent_name)


@tools.tool(ExtendLease, results.Task, ADDS)
def extend_task_lease(client: Client, args: ExtendLease) -> Any:
    """The same as extend_lease, under the original server's other name."""
    return extend_lease(client, args)
