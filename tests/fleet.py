"""Fleet: a thousand agents long-polling one server while others work.

    python tests/fleet.py [--waiters 1000] [--workers N] [--storage-url URL]   (`make fleet`)

Starts the real server under gunicorn with `make run`'s settings (only the rate limit off and
a known operator token), logs in `--waiters` agents (each its own session and connection)
that wait in `next-task` with `waitSeconds: 30`, and while they wait measures:

- the server's CPU (all its processes, % of one core) and the memory they cost (RSS of
  the master and workers, with them waiting, less before they came);
- `/health` on a new connection and `complete` of eight agents working another project
  (each pausing THINK_SECONDS between tasks, as an agent does its work), p50/p99;
- how long a task created while they wait takes to reach one of them (p50/p99 over
  `--tasks` tasks created one at a time), and how many waiters each task woke;
- a SIGTERM to the master: how long until every waiting poll had its answer.

The agents are coroutines on raw sockets (one process holds a thousand cheaply); the
working agents and probes share the event loop, so client-side delays count against the
server, never for it. `tests/test_fleet.py` runs a smaller fleet inside `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ADMIN_TOKEN, postgres_schema  # noqa: E402
from live_server import LiveServer  # noqa: E402

WAIT_SECONDS = 30
WORKING_AGENTS = 8
# Between a working agent's complete and its next next-task: an LLM agent spends seconds on
# a task; 50 ms keeps eight of them busy (up to 160 cycles/s) without saturating two cores
# with the load generator itself.
THINK_SECONDS = 0.05
REQUEST_TIMEOUT = 90.0


class Connection:
    """One keep-alive HTTP/1.1 connection: an agent's, as a real agent keeps one."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None
                      ) -> tuple[int, dict[str, Any]]:
        """Send one request and read its JSON answer."""
        status, data = await self.request_raw(method, path, body)
        return status, json.loads(data) if data else {}

    async def request_raw(self, method: str, path: str, body: Any = None
                          ) -> tuple[int, bytes]:
        """Send one request (reconnecting if the server closed the connection)."""
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                return await asyncio.wait_for(self._exchange(method, path, body),
                                              REQUEST_TIMEOUT)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n")
        self.writer.write(head.encode() + payload)
        await self.writer.drain()
        status_line = await self.reader.readuntil(b"\r\n")
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length, closing = 0, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                closing = True
        data = await self.reader.readexactly(length)
        if closing:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


@dataclass
class Fleet:
    """The running fleet's shared state and what it measured."""

    port: int
    waiting_project: str
    work_project: str
    received: dict[str, float] = field(default_factory=dict)  # task id -> when it arrived
    answered_polls: int = 0
    errors: list[str] = field(default_factory=list)
    stopping: bool = False
    refused: int = 0  # connections refused once the server stopped

    async def waiter(self, token: str, name: str) -> None:
        """Wait for work; complete what comes; wait again, until the fleet stops."""
        connection = Connection(self.port, token)
        try:
            while not self.stopping:
                try:
                    status, body = await connection.request(
                        "POST", f"/api/agents/{name}/next-task", {"waitSeconds": WAIT_SECONDS})
                except OSError:
                    self.refused += 1
                    return
                self.answered_polls += 1
                if status != 200:
                    self.errors.append(f"{name}: next-task {status} {body}")
                    return
                task = body["data"].get("task")
                if task is None:
                    continue
                self.received[task["id"]] = time.perf_counter()
                status, body = await connection.request(
                    "POST", f"/api/tasks/{task['id']}/complete", {"result": "done"})
                if status != 200:
                    self.errors.append(f"{name}: complete {status} {body}")
        finally:
            connection.close()

    async def worker(self, token: str, name: str, latencies: list[float],
                     until: float) -> None:
        """Cycle next-task + complete on the other project; time each complete."""
        connection = Connection(self.port, token)
        try:
            while time.perf_counter() < until:
                status, body = await connection.request(
                    "POST", f"/api/agents/{name}/next-task", {})
                task = body["data"].get("task") if status == 200 else None
                if task is None:
                    await asyncio.sleep(0.05)
                    continue
                started = time.perf_counter()
                status, body = await connection.request(
                    "POST", f"/api/tasks/{task['id']}/complete", {"result": "ok"})
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    self.errors.append(f"{name}: complete {status} {body}")
                await asyncio.sleep(THINK_SECONDS)
        finally:
            connection.close()

    async def probe_health(self, latencies: list[float], until: float) -> None:
        """`GET /health` on a new connection every 100 ms."""
        while time.perf_counter() < until:
            connection = Connection(self.port, ADMIN_TOKEN)
            started = time.perf_counter()
            status, _ = await connection.request("GET", "/health")
            latencies.append(time.perf_counter() - started)
            connection.close()
            if status != 200:
                self.errors.append(f"/health {status}")
            await asyncio.sleep(0.1)

    async def create_tasks(self, count: int, gap: float) -> list[tuple[str, float]]:
        """Create tasks one at a time in the waiting project; (id, when acknowledged)."""
        connection = Connection(self.port, ADMIN_TOKEN)
        created = []
        try:
            for number in range(count):
                status, body = await connection.request(
                    "POST", f"/api/projects/{self.waiting_project}/tasks",
                    {"instructions": f"fleet task {number}"})
                assert status == 201, body
                created.append((body["data"]["id"], time.perf_counter()))
                await asyncio.sleep(gap)
        finally:
            connection.close()
        return created


async def call(port: int, token: str, method: str, path: str, body: Any = None
               ) -> dict[str, Any]:
    connection = Connection(port, token)
    try:
        status, answer = await connection.request(method, path, body)
    finally:
        connection.close()
    assert status < 300, (status, answer)
    return answer


async def login_all(port: int, project: str, names: list[str]) -> list[str]:
    """One session per agent, logged in 50 at a time."""
    tokens: list[str] = []
    for start in range(0, len(names), 50):
        answers = await asyncio.gather(*(
            call(port, "", "POST", "/api/auth/login", {"agentName": name, "projectId": project})
            for name in names[start:start + 50]))
        tokens += [answer["data"]["token"] for answer in answers]
    return tokens


def server_processes(server: LiveServer) -> list[psutil.Process]:
    master = psutil.Process(server.pid)
    return [master, *master.children(recursive=True)]


def server_rss(server: LiveServer) -> int:
    return sum(p.memory_info().rss for p in server_processes(server))


def server_cpu_seconds(server: LiveServer) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in server_processes(server))


def metric(text: str, name: str) -> float:
    """A metric's value summed over its samples in Prometheus text."""
    return sum(float(m) for m in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


async def waiting_now(port: int) -> tuple[float, float]:
    """(polls waiting for work, wakeups so far) across every worker, from /metrics."""
    connection = Connection(port, ADMIN_TOKEN)
    try:
        _, raw = await connection.request_raw("GET", "/metrics")
    finally:
        connection.close()
    text = raw.decode(errors="replace")
    return (metric(text, "taskdriver_long_polls_waiting"),
            metric(text, "taskdriver_long_poll_wakeups_total"))


@contextmanager
def fleet_server(root: Path, workers: int | None, storage_url: str | None
                 ) -> Iterator[LiveServer]:
    env = {"TASKDRIVER_ADMIN_TOKEN": ADMIN_TOKEN}
    if storage_url:
        env["TASKDRIVER_STORAGE_URL"] = storage_url
    server = LiveServer(root / "data", workers or os.cpu_count() or 2, **env).start()
    try:
        yield server
    finally:
        server.stop()


async def _until_waiting(port: int, count: int, within: float) -> None:
    deadline = time.perf_counter() + within
    while (await waiting_now(port))[0] < count:
        assert time.perf_counter() < deadline, f"{count} polls were not all waiting"
        await asyncio.sleep(0.5)


async def measure(server: LiveServer, waiters: int, tasks: int, idle_seconds: float,
                  busy_seconds: float, stop: bool) -> dict[str, Any]:
    """Run the fleet against a started server; returns what it measured."""
    port = server.port
    projects = [(await call(port, ADMIN_TOKEN, "POST", "/api/projects", {"name": name}))
                ["data"]["id"] for name in ("fleet-waiting", "fleet-working")]
    fleet = Fleet(port, *projects)
    for _ in range(5):  # enough for the working agents throughout
        await call(port, ADMIN_TOKEN, "POST", f"/api/projects/{fleet.work_project}/tasks/bulk",
                   {"tasks": [{"instructions": f"work {i}"} for i in range(1000)]})
    names = [f"waiter-{number}" for number in range(waiters)]
    tokens = await login_all(port, fleet.waiting_project, names)
    workers = [f"worker-{number}" for number in range(WORKING_AGENTS)]
    worker_tokens = await login_all(port, fleet.work_project, workers)
    rss_before = server_rss(server)
    polls = [asyncio.create_task(fleet.waiter(token, name))
             for token, name in zip(tokens, names, strict=True)]
    await _until_waiting(port, waiters, within=120)
    report: dict[str, Any] = {"waiters": waiters,
                              "rss_for_waiters_mb": (server_rss(server) - rss_before) / 2**20}

    cpu_before, started = server_cpu_seconds(server), time.perf_counter()
    await asyncio.sleep(idle_seconds)
    report["idle_cpu_percent_of_one_core"] = (100 * (server_cpu_seconds(server) - cpu_before)
                                              / (time.perf_counter() - started))

    _, wakeups_before = await waiting_now(port)
    until = time.perf_counter() + busy_seconds
    health: list[float] = []
    completes: list[float] = []
    busy = [fleet.worker(token, name, completes, until)
            for token, name in zip(worker_tokens, workers, strict=True)]
    created, *_ = await asyncio.gather(
        fleet.create_tasks(tasks, gap=busy_seconds * 0.8 / tasks),
        fleet.probe_health(health, until), *busy)
    deadline = time.perf_counter() + 60
    while any(task_id not in fleet.received for task_id, _ in created):
        assert time.perf_counter() < deadline, "a created task never reached a waiter"
        await asyncio.sleep(0.05)
    _, wakeups_after = await waiting_now(port)
    reached = [fleet.received[task_id] - at for task_id, at in created]
    report.update({
        "health_p50_ms": 1000 * statistics.median(health),
        "health_p99_ms": 1000 * percentile(health, 0.99), "health_probes": len(health),
        "complete_p50_ms": 1000 * statistics.median(completes),
        "complete_p99_ms": 1000 * percentile(completes, 0.99), "completes": len(completes),
        "task_reached_waiter_p50_ms": 1000 * statistics.median(reached),
        "task_reached_waiter_p99_ms": 1000 * percentile(reached, 0.99), "tasks": tasks,
        "wakeups_per_task": (wakeups_after - wakeups_before) / tasks})
    if stop:
        await _until_waiting(port, waiters, within=120)
        fleet.stopping = True
        answered_before, stopped_at = fleet.answered_polls, time.perf_counter()
        server.process.send_signal(15)  # type: ignore[union-attr]
        await asyncio.gather(*polls)
        report.update({"sigterm_all_answered_s": time.perf_counter() - stopped_at,
                       "sigterm_polls_answered": fleet.answered_polls - answered_before,
                       "sigterm_polls_cut_off": fleet.refused})
    else:
        fleet.stopping = True
        for poll in polls:
            poll.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
    report["errors"] = fleet.errors[:5]
    return report


def run(waiters: int, tasks: int, idle_seconds: float, busy_seconds: float,
        workers: int | None = None, storage_url: str | None = None,
        stop: bool = True) -> dict[str, Any]:
    """Start a server (file storage in a temp dir, or `storage_url`), run the fleet."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="td-fleet-")))
        server = stack.enter_context(fleet_server(root, workers, storage_url))
        return asyncio.run(measure(server, waiters, tasks, idle_seconds, busy_seconds, stop))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=WAIT_SECONDS)
    parser.add_argument("--busy-seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--storage-url", default=None,
                        help="a PostgreSQL URL; 'test' makes a fresh schema in the test "
                             "database and drops it afterwards")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = args.storage_url
        if url == "test":
            url = stack.enter_context(postgres_schema())
        report = run(args.waiters, args.tasks, args.idle_seconds, args.busy_seconds,
                     args.workers, url)
    report["storage"] = "postgresql" if args.storage_url else "file"
    print(json.dumps(report, indent=2))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    if report["errors"] or report.get("sigterm_polls_cut_off"):
        sys.exit(1)


if __name__ == "__main__":
    main()
