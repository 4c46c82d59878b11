"""The three prompts: set up a project, work a queue as an agent, report on progress."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import mcp_types as types
from mcp import MCPError
from mcp_types import INVALID_PARAMS


@dataclass(frozen=True)
class PromptSpec:
    """A prompt: its arguments (name -> (description, required)) and its text."""

    name: str
    description: str
    arguments: Mapping[str, tuple[str, bool]]
    text: Callable[[Mapping[str, str]], str]

    def listing(self) -> types.Prompt:
        """The prompt as `prompts/list` shows it."""
        return types.Prompt(name=self.name, description=self.description, arguments=[
            types.PromptArgument(name=name, description=description, required=required)
            for name, (description, required) in self.arguments.items()])

    def render(self, given: Mapping[str, str] | None) -> types.GetPromptResult:
        """The prompt's message for these arguments; a missing or unknown one is refused."""
        given = given or {}
        missing = [name for name, (_, required) in self.arguments.items()
                   if required and not given.get(name)]
        unknown = sorted(set(given) - set(self.arguments))
        if missing or unknown:
            problems = [f"{name}: required" for name in missing]
            problems += [f"{name}: unknown argument" for name in unknown]
            raise MCPError(INVALID_PARAMS, f"Invalid arguments for {self.name}: "
                                           + "; ".join(problems))
        message = types.PromptMessage(role="user", content=types.TextContent(
            type="text", text=self.text(given)))
        return types.GetPromptResult(description=self.description, messages=[message])


def _setup_project(given: Mapping[str, str]) -> str:
    goal = given.get("goal")
    return (f"Set up a TaskDriver project named {given['projectName']!r} for this work"
            f"{': ' + goal if goal else ''}.\n\n1. create_project with that name and "
            "instructions every agent should follow.\n2. Find what the items have in common "
            "and create_task_type with a template using {{variables}} for what differs "
            "(duplicateHandling 'ignore' if an item may appear twice).\n3. create_tasks_bulk "
            "with one task per item (typeId and variables only), up to 1,000 a call.\n4. "
            f"get_project_stats to confirm the count.\n\nThe work items:\n{given['workItems']}")


def _work_queue(given: Mapping[str, str]) -> str:
    return (f"You are agent {given['agentName']!r} working the TaskDriver project "
            f"{given['projectId']!r}. Repeat until get_next_task returns no task:\n1. "
            "get_next_task (projectId, agentName, waitSeconds 30).\n2. Do exactly what the "
            "project's instructions and the task's instructions say.\n3. complete_task with "
            "your result (put structured findings in outputs), or fail_task with the error; "
            "canRetry true when another try may succeed, false when the task itself is "
            "wrong.\nIf a task takes long, call extend_lease before its leaseExpiresAt. Never "
            "work on two tasks at once.")


def _report_progress(given: Mapping[str, str]) -> str:
    return (f"Report on the TaskDriver project {given['projectId']!r}: call "
            "get_project_stats, list_active_agents and list_tasks with status 'failed' (limit "
            "20). Say how far along it is (completed of total, queued, running), how fast it "
            "moves (completions in the last hour, average task time), who is working, and the "
            "most common failure reasons with a suggestion for each (retry_task when a failure "
            "was transient, retry_failed_tasks for many).")


PROMPTS = (
    PromptSpec("setup_project", "Set up a TaskDriver project for a list of work items.",
               {"projectName": ("The new project's name.", True),
                "workItems": ("The work items, one per line or as a list.", True),
                "goal": ("What the work is for, in a sentence.", False)}, _setup_project),
    PromptSpec("work_queue", "Work through a project's queue as an agent.",
               {"projectId": ("The project's id or name.", True),
                "agentName": ("The agent's name.", True)}, _work_queue),
    PromptSpec("report_progress", "Report how a project is going.",
               {"projectId": ("The project's id or name.", True)}, _report_progress),
)
