"""The transport under every `Client` call: one requests session, retries with backoff,
`Retry-After`, the agent's own login, and HTTP answers turned into results or `ApiError`.

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
from .types import Login, Page

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_RETRIES = 5
BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
RETRY_STATUSES = {429, 503}
PAGE_SIZE = 1000


class Transport:
    """The connection to one TaskDriver server, as an operator (`token`) or as one agent
    (`agent_name` and `project`: it logs in on first use); the endpoint classes composed
    into `Client` send every request through `call`."""

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
        self.logged_out = False  # after `logout`, a 401 is final: no new session is opened
        self._http = requests.Session()
        self._lock = threading.RLock()

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
                    and not error.session_replaced and not self.logged_out):
                relogged = True  # the session expired: log in again, once, and repeat
                self.login()
                continue
            raise error

    def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs)["data"]

    def _page(self, path: str, params: dict[str, Any]) -> Page:
        body = self.call("GET", path, params=present(params), safe=True)
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

    # The agent's own session: `call` opens it on first use and again once it expired.

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


def present(values: dict[str, Any]) -> dict[str, Any]:
    """The values that are set: the API reads a missing field as its default."""
    return {key: value for key, value in values.items() if value is not None}


def new_key() -> str:
    """A fresh Idempotency-Key, so a create's retries create it once."""
    return str(uuid.uuid4())


def is_uuid(text: str) -> bool:
    """Whether a reference is an id (else a name to look up)."""
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def quoted(segment: str) -> str:
    """One path segment, escaped so an odd id or name cannot change the path."""
    return quote(str(segment), safe="")
