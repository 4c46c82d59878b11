"""The queue as an agent works it: lease, complete, fail, release, extend, keep a lease."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

from .errors import ApiError
from .projects import ProjectEndpoints
from .transport import present, quoted
from .types import AgentLease, Lease, Task

MAX_WAIT_SECONDS = 30.0  # the API's ceiling on next-task's waitSeconds; longer asks are capped


class QueueEndpoints(ProjectEndpoints):
    """Leasing and reporting on tasks, and what a project's agents hold."""

    def next_task(self, agent_name: str | None = None, project_id: str | None = None,
                  wait_seconds: float = 0) -> Task | None:
        """Lease the next task (or get back the one this agent holds); None when there is
        none, after waiting up to `wait_seconds` (long poll, capped at the server's
        MAX_WAIT_SECONDS) for one."""
        lease = self.next_lease(agent_name, project_id, wait_seconds)
        return lease["task"] if lease is not None else None

    def next_lease(self, agent_name: str | None = None, project_id: str | None = None,
                   wait_seconds: float = 0) -> Lease | None:
        """As `next_task`, but the whole answer: the task, the agent's name and, from a
        server that sends it, the project (`id`, `name`, `instructions`)."""
        agent = agent_name or self.agent_name
        if agent is None:
            raise ValueError("next_task needs an agent name")
        wait_seconds = min(wait_seconds, MAX_WAIT_SECONDS)
        body: dict[str, Any] = {"waitSeconds": wait_seconds} if wait_seconds else {}
        if project_id or not self.is_agent:
            body["projectId"] = project_id or self.project
        answer = self.call("POST", f"/api/agents/{quoted(agent)}/next-task", json=body,
                           safe=True, timeout=self.timeout + wait_seconds)
        return cast(Lease, answer["data"]) if answer.get("success") else None

    def peek_next_task(self, project_id: str) -> int:
        data = self._data("GET", f"/api/projects/{self.project_id(project_id)}/peek-next-task",
                          safe=True)
        return int(data["tasksAvailable"])

    def active_agents(self, project_id: str) -> list[AgentLease]:
        return cast(list[AgentLease], self._data(
            "GET", f"/api/projects/{self.project_id(project_id)}/agents", safe=True))

    def cleanup_leases(self, project_id: str) -> dict[str, int]:
        return cast(dict[str, int], self._data(
            "POST", f"/api/projects/{self.project_id(project_id)}/cleanup-leases", safe=True))

    def complete_task(self, task_id: str, result: Any = None, outputs: Any = None,
                      agent_name: str | None = None) -> Task:
        """Report success; repeating it is harmless, so it is retried."""
        body = present({"result": result, "outputs": outputs, "agentName": agent_name})
        return cast(Task, self._data("POST", f"/api/tasks/{quoted(task_id)}/complete",
                                     json=body, safe=True))

    def fail_task(self, task_id: str, error: str, can_retry: bool = True,
                  agent_name: str | None = None) -> Task:
        body = present({"error": error, "canRetry": can_retry, "agentName": agent_name})
        return cast(Task, self._data("POST", f"/api/tasks/{quoted(task_id)}/fail", json=body))

    def release_task(self, task_id: str, agent_name: str | None = None) -> Task:
        """Give a held task back to the queue untouched (no attempt, no retry spent); sent
        once: a repeat of one that got through is refused, as the task is no longer held."""
        body = present({"agentName": agent_name})
        return cast(Task, self._data("POST", f"/api/tasks/{quoted(task_id)}/release",
                                     json=body))

    def extend_lease(self, task_id: str, minutes: float, agent_name: str | None = None
                     ) -> Task:
        body = present({"extensionMinutes": minutes, "agentName": agent_name})
        return cast(Task, self._data("POST", f"/api/tasks/{quoted(task_id)}/extend-lease",
                                     json=body))

    def report_progress(self, task_id: str, progress: float | None = None,
                        message: str | None = None, extension_minutes: float | None = None,
                        agent_name: str | None = None) -> Task:
        """Tell how far the held task got (0-100, a message), optionally extending its
        lease as `extend_lease` does; a repeat is harmless, so it is retried."""
        body = present({"progress": progress, "message": message,
                        "extensionMinutes": extension_minutes, "agentName": agent_name})
        return cast(Task, self._data("POST", f"/api/tasks/{quoted(task_id)}/progress",
                                     json=body, safe=True))

    def keep_lease(self, task: Task, every: float | None = None,
                   on_cancel: Callable[[], None] | None = None) -> LeaseKeeper:
        """A context manager that extends `task`'s lease in the background while it runs
        (`on_cancel`: called should an operator cancel the task meanwhile)."""
        return LeaseKeeper(self, task, every, on_cancel)


class LeaseKeeper:
    """Extends a task's lease every third of its length while the block runs; stops at the
    end of the block (after the task was completed or failed). A failed extension (the
    lease was lost) is kept in `error` and ends the keeping; when it says an operator
    cancelled the task, `on_cancel` (if given) is called from the keeper's thread."""

    def __init__(self, client: QueueEndpoints, task: Task, every: float | None = None,
                 on_cancel: Callable[[], None] | None = None) -> None:
        self.client = client
        self.task = task
        self.on_cancel = on_cancel
        self.minutes = _lease_minutes(task)
        self.every = every or max(1.0, self.minutes * 60 / 3)
        self.error: ApiError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"lease-{task['id'][:8]}")

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.client.extend_lease(self.task["id"], self.minutes)
            except ApiError as exc:
                if exc.status == 0:
                    continue  # the server is unreachable for now: try again next time
                self.error = exc
                if exc.task_cancelled and self.on_cancel is not None:
                    self.on_cancel()
                return

    @property
    def cancelled(self) -> bool:
        """Whether the keeper learned that an operator cancelled the task."""
        return self.error is not None and self.error.task_cancelled


def _lease_minutes(task: Task) -> float:
    from datetime import datetime

    if not task.get("leaseExpiresAt") or not task.get("assignedAt"):
        return 10.0
    ends = datetime.fromisoformat(str(task["leaseExpiresAt"]).replace("Z", "+00:00"))
    starts = datetime.fromisoformat(str(task["assignedAt"]).replace("Z", "+00:00"))
    return max(0.05, (ends - starts).total_seconds() / 60)
