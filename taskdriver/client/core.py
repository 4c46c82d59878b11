"""`Client`: every endpoint of the TaskDriver API, over HTTP only.

Safety of repeats decides retries: a call that is safe to send twice (reads, `next-task`,
which resumes a held lease, `complete`, which is idempotent, and creates, which carry an
`Idempotency-Key`) is retried with backoff when the connection fails or the server answers
429 or 503 (after its `Retry-After`). A call that is not (`fail`, `release`, `extend-lease`,
updates, deletes) is sent once. An agent client logs in by itself, and logs in again when its
session expires, unless a newer login under the same name ended it.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import quote, urlsplit

import requests

from .errors import ApiError, ServerUnreachable
from .types import (
    AgentLease,
    Batch,
    BulkResult,
    Lease,
    Login,
    Page,
    Project,
    ProjectStats,
    Task,
    TaskType,
)

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_RETRIES = 5
BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
RETRY_STATUSES = {429, 503}
PAGE_SIZE = 1000
PROJECT_PAGE_SIZE = 100  # the projects list pages by 100 at most
MAX_WAIT_SECONDS = 30.0  # the API's ceiling on next-task's waitSeconds; longer asks are capped


class Client:
    """A TaskDriver server, as an operator (`token`) or as one agent (`agent_name` and
    `project`: it logs in on first use). Thread-safe for use by one agent at a time."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, *,
                 agent_name: str | None = None, project: str | None = None,
                 agent_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 retries: int = DEFAULT_RETRIES,
                 on_rate_limit: Callable[[float], None] | None = None,
                 connect_timeout: float | None = None) -> None:
        """`on_rate_limit`: when given, a 429 is always waited out for its whole
        `Retry-After` and the call repeated, however often (a refused request was not
        carried out, so repeating it is safe); the callable hears each wait first.
        `connect_timeout`: how long to wait for a connection (None: `timeout` covers it)."""
        self.url = check_url(url)
        self.token = token
        self.agent_name = agent_name
        self.project = project
        self.agent_key = agent_key
        self.timeout = timeout
        self.retries = retries
        self.on_rate_limit = on_rate_limit
        self.connect_timeout = connect_timeout
        self.session_info: Login | None = None
        self._http = requests.Session()
        self._lock = threading.RLock()

    # -- transport ---------------------------------------------------------------------------

    @property
    def is_agent(self) -> bool:
        return self.agent_name is not None and self.project is not None

    def _headers(self, idempotency_key: str | None) -> dict[str, str]:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def call(self, method: str, path: str, *, json: Any = None,
             params: dict[str, Any] | None = None, safe: bool = False,
             idempotency_key: str | None = None, timeout: float | None = None,
             authenticated: bool = True) -> dict[str, Any]:
        """Send one request and return the whole envelope; raise ApiError for a refusal.

        `safe` (or an idempotency key) allows retries; an agent logs in first and again
        after its session expired."""
        if authenticated and self.is_agent and self.token is None:
            self.login()
        attempt = 0
        relogged = False
        while True:
            try:
                response = self._http.request(
                    method, self.url + path, json=json, params=params,
                    headers=self._headers(idempotency_key),
                    timeout=(self.connect_timeout or timeout or self.timeout,
                             timeout or self.timeout))
            except requests.RequestException as exc:
                if (safe or idempotency_key) and attempt < self.retries:
                    attempt += 1
                    time.sleep(_backoff(attempt))
                    continue
                raise ServerUnreachable(self.url, _reason(exc)) from None
            if response.status_code == 429 and self.on_rate_limit is not None:
                wait = _retry_after(response, cap=None) or _backoff(attempt + 1)
                self.on_rate_limit(wait)
                time.sleep(wait)
                continue
            if response.status_code in RETRY_STATUSES and (safe or idempotency_key) \
                    and attempt < self.retries:
                attempt += 1
                time.sleep(_retry_after(response) or _backoff(attempt))
                continue
            body = _envelope(response)
            if response.status_code < 400:
                return body
            error = _error(response, body)
            if (error.status == 401 and authenticated and self.is_agent and not relogged
                    and not error.session_replaced):
                relogged = True  # the session expired: log in again, once, and repeat
                self.login()
                continue
            raise error

    def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs)["data"]

    def _page(self, path: str, params: dict[str, Any]) -> Page:
        body = self.call("GET", path, params=_present(params), safe=True)
        pagination = body["pagination"]
        return Page(items=body["data"], total=pagination["total"],
                    limit=pagination["limit"], offset=pagination["offset"])

    def _every(self, path: str, params: dict[str, Any], page_size: int = PAGE_SIZE
               ) -> Iterator[Any]:
        offset = 0
        while True:
            page = self._page(path, {**params, "limit": page_size, "offset": offset})
            yield from page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    # -- auth -----------------------------------------------------------------------------

    def login(self) -> Login:
        """Log in as this client's agent; later calls use the session's token."""
        if not self.is_agent:
            raise ValueError("login needs agent_name and project")
        with self._lock:
            body = {"agentName": self.agent_name, "projectId": self.project}
            if self.agent_key:
                body["agentKey"] = self.agent_key
            info = cast(Login, self._data("POST", "/api/auth/login", json=body, safe=True,
                                          authenticated=False))
            self.token = info["token"]
            self.session_info = info
            return info

    def logout(self) -> None:
        self.call("POST", "/api/auth/logout")
        self.token = None

    def get_session(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("GET", "/api/auth/session", safe=True))

    def extend_session(self, seconds: int) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("PUT", "/api/auth/session",
                                               json={"extendBy": seconds}))

    # -- projects -----------------------------------------------------------------------------

    def list_projects(self, status: str = "active", limit: int = 100, offset: int = 0
                      ) -> Page:
        return self._page("/api/projects", {"status": status, "limit": limit,
                                            "offset": offset})

    def iter_projects(self, status: str = "active") -> Iterator[Project]:
        """Every project with this status (`active`, `closed` or `all`), oldest first."""
        return self._every("/api/projects", {"status": status}, PROJECT_PAGE_SIZE)

    def create_project(self, name: str, description: str = "", instructions: str = "",
                       config: dict[str, Any] | None = None,
                       idempotency_key: str | None = None) -> Project:
        body = _present({"name": name, "description": description,
                         "instructions": instructions, "config": config})
        return cast(Project, self._data("POST", "/api/projects", json=body,
                                        idempotency_key=idempotency_key or _new_key()))

    def get_project(self, project_id: str) -> Project:
        return cast(Project, self._data("GET", f"/api/projects/{self.project_id(project_id)}",
                                        safe=True))

    def update_project(self, project_id: str, **fields: Any) -> Project:
        return cast(Project, self._data("PUT", f"/api/projects/{self.project_id(project_id)}",
                                        json=fields))

    def delete_project(self, project_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._data(
            "DELETE", f"/api/projects/{self.project_id(project_id)}"))

    def project_stats(self, project_id: str) -> ProjectStats:
        return cast(ProjectStats, self._data(
            "GET", f"/api/projects/{self.project_id(project_id)}/stats", safe=True))

    def project_id(self, reference: str) -> str:
        """A project's id from its id or its name (paths take ids only)."""
        if _is_uuid(reference):
            return reference
        for project in self.iter_projects("all"):
            if project["name"] == reference:
                return str(project["id"])
        raise ApiError(404, f"Project not found: {reference}")

    # -- task types -------------------------------------------------------------------------

    def list_task_types(self, project_id: str, limit: int = 100, offset: int = 0) -> Page:
        return self._page(f"/api/projects/{self.project_id(project_id)}/task-types",
                          {"limit": limit, "offset": offset})

    def iter_task_types(self, project_id: str) -> Iterator[TaskType]:
        """Every task type of the project."""
        return self._every(f"/api/projects/{self.project_id(project_id)}/task-types", {})

    def create_task_type(self, project_id: str, name: str,
                         idempotency_key: str | None = None, **fields: Any) -> TaskType:
        return cast(TaskType, self._data(
            "POST", f"/api/projects/{self.project_id(project_id)}/task-types",
            json={"name": name, **fields}, idempotency_key=idempotency_key or _new_key()))

    def get_task_type(self, type_id: str) -> TaskType:
        return cast(TaskType, self._data("GET", f"/api/task-types/{_path(type_id)}", safe=True))

    def update_task_type(self, type_id: str, **fields: Any) -> TaskType:
        return cast(TaskType, self._data("PUT", f"/api/task-types/{_path(type_id)}",
                                         json=fields))

    def delete_task_type(self, type_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("DELETE", f"/api/task-types/{_path(type_id)}"))

    def task_type_id(self, project_id: str, reference: str) -> str:
        """A task type's id from its id or its name within the project."""
        if _is_uuid(reference):
            return reference
        for task_type in self.iter_task_types(project_id):
            if task_type["name"] == reference:
                return str(task_type["id"])
        raise ApiError(404, f"Task type not found in project {project_id}: {reference}")

    # -- tasks ----------------------------------------------------------------------------------

    def list_tasks(self, project_id: str, *, status: str | None = None,
                   assigned_to: str | None = None, batch_id: str | None = None,
                   type_id: str | None = None, limit: int = 100, offset: int = 0) -> Page:
        return self._page(f"/api/projects/{self.project_id(project_id)}/tasks",
                          {"status": status, "assignedTo": assigned_to, "batchId": batch_id,
                           "typeId": type_id, "limit": limit, "offset": offset})

    def iter_tasks(self, project_id: str, *, status: str | None = None,
                   assigned_to: str | None = None, batch_id: str | None = None,
                   type_id: str | None = None) -> Iterator[Task]:
        """Every matching task, oldest first, fetched a page of 1,000 at a time."""
        return self._every(f"/api/projects/{self.project_id(project_id)}/tasks",
                           _present({"status": status, "assignedTo": assigned_to,
                                     "batchId": batch_id, "typeId": type_id}))

    def create_task(self, project_id: str, *, instructions: str | None = None,
                    type_id: str | None = None, variables: dict[str, str] | None = None,
                    batch_id: str | None = None, description: str | None = None,
                    priority: int | None = None, delay_seconds: float | None = None,
                    run_after: str | None = None,
                    idempotency_key: str | None = None) -> Task:
        """Create one task; `priority` (higher first), and `delay_seconds` or `run_after`
        (RFC 3339) to hold it back until then."""
        body = _present({"instructions": instructions, "typeId": type_id,
                         "variables": variables, "batchId": batch_id,
                         "description": description, "priority": priority,
                         "delaySeconds": delay_seconds, "runAfter": run_after})
        return cast(Task, self._data("POST",
                                     f"/api/projects/{self.project_id(project_id)}/tasks",
                                     json=body, idempotency_key=idempotency_key or _new_key()))

    def create_tasks_bulk(self, project_id: str, tasks: list[dict[str, Any]],
                          batch_id: str | None = None,
                          idempotency_key: str | None = None) -> BulkResult:
        """Create up to 1,000 tasks in one request (each item as for `create_task`, in the
        API's camelCase); safe to retry, as it carries an Idempotency-Key."""
        body = _present({"tasks": tasks, "batchId": batch_id})
        return cast(BulkResult, self._data(
            "POST", f"/api/projects/{self.project_id(project_id)}/tasks/bulk", json=body,
            idempotency_key=idempotency_key or _new_key()))

    def get_task(self, task_id: str) -> Task:
        return cast(Task, self._data("GET", f"/api/tasks/{_path(task_id)}", safe=True))

    def update_task(self, task_id: str, **fields: Any) -> Task:
        return cast(Task, self._data("PUT", f"/api/tasks/{_path(task_id)}", json=fields))

    def delete_task(self, task_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("DELETE", f"/api/tasks/{_path(task_id)}"))

    def retry_task(self, task_id: str) -> Task:
        return cast(Task, self._data("POST", f"/api/tasks/{_path(task_id)}/retry"))

    def retry_failed(self, project_id: str, batch_id: str | None = None,
                     type_id: str | None = None) -> int:
        """Send every failed task of the project (of a batch, of a type) back to the queue."""
        data = self._data("POST", f"/api/projects/{self.project_id(project_id)}/tasks/retry",
                          json=_present({"batchId": batch_id, "typeId": type_id}))
        return int(data["retried"])

    def iter_batches(self, project_id: str) -> Iterator[Batch]:
        """Every batch of the project with its progress, in order of first use."""
        return self._every(f"/api/projects/{self.project_id(project_id)}/batches", {})

    def batch_status(self, project_id: str, batch_id: str) -> Batch:
        return cast(Batch, self._data(
            "GET", f"/api/projects/{self.project_id(project_id)}/batches/{_path(batch_id)}",
            safe=True))

    # -- the queue ------------------------------------------------------------------------------

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
        answer = self.call("POST", f"/api/agents/{_path(agent)}/next-task", json=body,
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
        body = _present({"result": result, "outputs": outputs, "agentName": agent_name})
        return cast(Task, self._data("POST", f"/api/tasks/{_path(task_id)}/complete",
                                     json=body, safe=True))

    def fail_task(self, task_id: str, error: str, can_retry: bool = True,
                  agent_name: str | None = None) -> Task:
        body = _present({"error": error, "canRetry": can_retry, "agentName": agent_name})
        return cast(Task, self._data("POST", f"/api/tasks/{_path(task_id)}/fail", json=body))

    def release_task(self, task_id: str, agent_name: str | None = None) -> Task:
        """Give a held task back to the queue untouched (no attempt, no retry spent); sent
        once: a repeat of one that got through is refused, as the task is no longer held."""
        body = _present({"agentName": agent_name})
        return cast(Task, self._data("POST", f"/api/tasks/{_path(task_id)}/release",
                                     json=body))

    def extend_lease(self, task_id: str, minutes: float, agent_name: str | None = None
                     ) -> Task:
        body = _present({"extensionMinutes": minutes, "agentName": agent_name})
        return cast(Task, self._data("POST", f"/api/tasks/{_path(task_id)}/extend-lease",
                                     json=body))

    def keep_lease(self, task: Task, every: float | None = None) -> LeaseKeeper:
        """A context manager that extends `task`'s lease in the background while it runs."""
        return LeaseKeeper(self, task, every)

    # -- operations -----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The health body (also when the server answers 503 unhealthy)."""
        try:
            return self.call("GET", "/health", safe=True, authenticated=False)["data"]
        except ApiError as exc:
            if exc.status == 503:
                return {"status": "unhealthy", "error": exc.message}
            raise

    def metrics(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("GET", "/metrics/json", safe=True,
                                               authenticated=False))


class LeaseKeeper:
    """Extends a task's lease every third of its length while the block runs; stops at the
    end of the block (after the task was completed or failed). A failed extension (the
    lease was lost) is kept in `error` and ends the keeping."""

    def __init__(self, client: Client, task: Task, every: float | None = None) -> None:
        self.client = client
        self.task = task
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
                return


def _lease_minutes(task: Task) -> float:
    from datetime import datetime

    if not task.get("leaseExpiresAt") or not task.get("assignedAt"):
        return 10.0
    ends = datetime.fromisoformat(str(task["leaseExpiresAt"]).replace("Z", "+00:00"))
    starts = datetime.fromisoformat(str(task["assignedAt"]).replace("Z", "+00:00"))
    return max(0.05, (ends - starts).total_seconds() / 60)


def check_url(url: str) -> str:
    """The server's root URL without its trailing slash; ValueError, saying what to write
    instead, for a URL without `http://` or `https://` or one that ends in `/api`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url} is not a URL: it needs http:// or https:// "
                         f"(for example http://{url.split('://')[-1]})")
    root = url.rstrip("/")
    if parts.path.rstrip("/").endswith("/api"):
        raise ValueError(f"{url} is the server's /api path: give the server's root "
                         f"URL instead ({root[:-len('/api')]})")
    return root


def _envelope(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return {"success": False, "error": f"HTTP {response.status_code} without a TaskDriver "
                                           f"answer: {response.text[:200]!r}"}
    return body


def _error(response: requests.Response, body: dict[str, Any]) -> ApiError:
    return ApiError(response.status_code, str(body.get("error") or response.reason),
                    body.get("correlationId") or response.headers.get("X-Correlation-ID"),
                    body.get("validationDetails"))


def _retry_after(response: requests.Response, cap: float | None = MAX_BACKOFF_SECONDS
                 ) -> float | None:
    """The seconds of a `Retry-After` header (at most `cap`); None without one."""
    value = response.headers.get("Retry-After", "")
    if not value.isdigit():
        return None
    return float(value) if cap is None else min(float(value), cap)


def _backoff(attempt: int) -> float:
    """Exponential, capped, with full jitter so a fleet does not retry in step."""
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** attempt))


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or dropped"
    return exc.__class__.__name__


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _new_key() -> str:
    return str(uuid.uuid4())


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _path(segment: str) -> str:
    return quote(str(segment), safe="")
