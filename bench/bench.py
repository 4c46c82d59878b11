"""TaskDriver benchmark: the real server under gunicorn, driven over HTTP on loopback.

    python bench/bench.py [--quick] [--tasks 1000,10000,100000] [--agents 1,8]
                          [--cycles 2000] [--workers N] [--mixed] [--limited]
                          [--output bench/results.json]

Measures bulk load (tasks/s with 1,000-task requests), the agent cycle (next-task +
complete: cycles/s and p50/p99 latency) at several queue depths and agent counts, the
cycle beside 100,000 waiting tasks (dependencies) against none (`--waiting`), and the
cold start of a worker on the largest project (time to first answer, peak RSS), and the
first `complete` on a cold worker with 1 and with 50 projects on disk. Storage is
the file backend with fsync on. Agents are separate processes, so the client's GIL does not
cap the server.

Beside TaskDriver, in the same run and with the same clients, it measures the floor
(`bench/floor_app.py`: a bare Flask app under the same gunicorn configuration whose writes
are one append and one fsync under a file lock) and prints each throughput as a ratio to
it: absolute figures move with the machine's load, ratios taken side by side do not.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench_table import OWNER_TASKS_PER_PROJECT, table  # noqa: E402
from http_client import Client  # noqa: E402
from pg_rows import one_vs_spread  # noqa: E402
from waiting_rows import waiting_vs_none  # noqa: E402

from taskdriver.config import DEFAULT_THREADS  # noqa: E402

from live_server import LiveServer  # noqa: E402

TOKEN = "bench-operator-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
BULK_SIZE = 1000
OWNER_PROJECTS = (1, 50)  # projects on disk for the cold `complete` figure
FLOOR = "floor"  # the bare Flask + fsync app every throughput is compared with


def operator(server: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, f"{server.url}{path}", headers=HEADERS, timeout=120,
                                **kwargs)
    response.raise_for_status()
    return response.json()


MIXED = False  # --mixed: priorities -5..5, and every 4th task delayed by an hour
LIMITED: dict[str, list[str]] | None = None  # --limited: project id -> its two types' ids


def _two_types(server: LiveServer, project_id: str) -> None:
    """--limited: a type with maxConcurrent 1 and a free one; tasks alternate between them,
    so most claims pass over the full type (issue 22: the claim stays flat)."""
    if LIMITED is not None:
        LIMITED[project_id] = [operator(
            server, "POST", f"/api/projects/{project_id}/task-types",
            json={"name": name, "variables": ["module"], **limit})["data"]["id"]
            for name, limit in (("limited", {"maxConcurrent": 1}), ("free", {}))]


def _bench_task(number: int, types: list[str] | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {"instructions": f"Analyse module {number}",
                            "variables": {"module": str(number)}}
    if types:
        task["typeId"] = types[number % 2]
    if MIXED:
        task["priority"] = number % 11 - 5
        if number % 4 == 0:
            task["delaySeconds"] = 3600
    return task


def bulk_load(server: LiveServer, project_id: str, count: int) -> float:
    """Load `count` tasks in 1,000-task requests; returns tasks per second."""
    started = time.perf_counter()
    loaded = 0
    while loaded < count:
        size = min(BULK_SIZE, count - loaded)
        types = (LIMITED or {}).get(project_id)
        body = {"tasks": [_bench_task(loaded + i, types) for i in range(size)]}
        data = operator(server, "POST", f"/api/projects/{project_id}/tasks/bulk",
                        json=body)["data"]
        assert data["tasksCreated"] == size, data["errors"][:3]
        loaded += size
    return count / (time.perf_counter() - started)


def analyze(storage_url: str | None) -> None:
    """On PostgreSQL, ANALYZE every table of the benchmark's schema once a load is done.

    Autovacuum may be off (it is on the benchmark machine): the planner would then choose
    the claim's plan for tables it still believes empty, and the figures would measure
    that plan rather than TaskDriver's."""
    if not storage_url:
        return
    import psycopg  # only a PostgreSQL run needs it
    from psycopg import sql

    with psycopg.connect(storage_url, autocommit=True) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        for table_name in tables:
            connection.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table_name)))


def _agent(args: tuple[str, str, str, int]) -> list[tuple[float, float]]:
    """One agent process: `cycles` of next-task + complete; (next-task s, cycle s) each."""
    url, project_name, name, cycles = args
    client = Client(url)
    _, login = client.post("/api/auth/login", {"agentName": name, "projectId": project_name})
    client.headers["Authorization"] = f"Bearer {login['data']['token']}"
    timings = []
    for _ in range(cycles):
        start = time.perf_counter()
        _, body = client.post(f"/api/agents/{name}/next-task", {})
        leased = time.perf_counter()
        if not body["success"]:
            break
        status, done = client.post(f"/api/tasks/{body['data']['task']['id']}/complete",
                                   {"result": "ok", "outputs": {"findings": 0}})
        assert status == 200, done
        timings.append((leased - start, time.perf_counter() - start))
    return timings


def agent_cycles(server: LiveServer, projects: dict[int, dict[str, str]], agents: int,
                 cycles: int, workers: int, repeat: int, floor: LiveServer
                 ) -> tuple[dict[int, dict[str, float]], dict[str, float]]:
    """Time agent cycles at every depth and on the floor, `repeat` times: the median of each
    figure by depth, and of the floor's.

    Runs interleave the depths and the floor (1,000, 100,000, floor, 1,000, ...), so a drift
    of the shared machine touches every figure alike and the ratios between them are fair. A
    warm-up first lets every worker read each queue once (that first read is what the
    cold-start figure measures). Before each run the queue is topped up by what the run will
    take, so it stays between its depth and twice that.
    """
    for project in projects.values():
        bulk_load(server, project["id"], 2 * workers * agents)
        with multiprocessing.Pool(agents) as pool:
            pool.map(_agent, [(server.url, project["name"], f"warm-{agents}-{i}", 2 * workers)
                              for i in range(agents)])
    runs: dict[int, list[dict[str, float]]] = {depth: [] for depth in projects}
    floor_runs = []
    for run in range(repeat):
        for depth, project in projects.items():
            per_run = min(cycles, depth)
            bulk_load(server, project["id"], per_run)
            runs[depth].append(_timed_cycles(server, project["name"], agents, per_run, run))
        floor_runs.append(_timed_cycles(floor, FLOOR, agents, cycles, run))
    return ({depth: _medians(depth_runs) for depth, depth_runs in runs.items()},
            _medians(floor_runs))


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _timed_cycles(server: LiveServer, project_name: str | list[str], agents: int,
                  cycles: int, run: int) -> dict[str, float]:
    """`cycles` agent cycles by `agents` agents on one project (or each on its own)."""
    per_agent = max(1, cycles // agents)
    names = [project_name] * agents if isinstance(project_name, str) else project_name
    jobs = [(server.url, names[i], f"bench-{agents}-{run}-{i}", per_agent)
            for i in range(agents)]
    with multiprocessing.Pool(agents) as pool:
        results = pool.map(_agent, jobs)
    timings = [t for result in results for t in result]
    # Throughput is the sum of each agent's own rate while it cycled: logins and the ramp
    # up and down of the agents' start and finish are left out, so short and long runs
    # (shallow and deep queues) measure the same steady state.
    rate = sum(len(result) / sum(t[1] for t in result) for result in results if result)
    leases = sorted(t[0] for t in timings)
    whole = sorted(t[1] for t in timings)

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    return {"cycles": len(timings), "cycles_per_s": rate,
            "cycle_p50_ms": pct(whole, 0.5), "cycle_p99_ms": pct(whole, 0.99),
            "next_task_p50_ms": pct(leases, 0.5), "next_task_p99_ms": pct(leases, 0.99)}


def cold_start(data_dir: Path, project_id: str, env: dict[str, str]) -> dict[str, float]:
    """A fresh one-worker server: time until it answers a read of the big project."""
    server = LiveServer(data_dir, workers=1, **env)
    server.start()  # /health answers before any project is loaded
    try:
        started = time.perf_counter()
        operator(server, "GET", f"/api/projects/{project_id}/tasks?limit=1")
        first = time.perf_counter() - started
        worker = psutil.Process(server.pid).children()[0]
        rss = worker.memory_info().rss
        peak = _peak_rss(worker.pid) or rss
    finally:
        server.stop()
    return {"first_request_s": first, "worker_rss_mb": rss / 2**20,
            "worker_peak_rss_mb": peak / 2**20}


def cold_complete(root: Path, env: dict[str, str], project_counts: tuple[int, ...],
                  tasks_per_project: int, repeat: int) -> dict[str, float]:
    """The first `complete` a cold worker answers, with 1 or many projects on disk.

    A task's id names its project, so the first request loads that one project however many
    others there are: the two figures should match.
    """
    figures: dict[str, float] = {}
    for count in project_counts:
        server = LiveServer(root / f"owners-{count}", workers=1, **env).start()
        try:
            for number in range(count):
                project = operator(server, "POST", "/api/projects",
                                   json={"name": f"owners-{number}"})["data"]
                bulk_load(server, project["id"], tasks_per_project)
            leased = [operator(server, "POST", f"/api/agents/cold-{run}/next-task",
                               json={"projectId": project["id"]})["data"]["task"]["id"]
                      for run in range(repeat)]
        finally:
            server.stop()
        timings = []
        for task_id in leased:
            server.start()
            try:
                started = time.perf_counter()
                operator(server, "POST", f"/api/tasks/{task_id}/complete", json={})
                timings.append(time.perf_counter() - started)
            finally:
                server.stop()
        figures[str(count)] = statistics.median(timings) * 1000
        print(f"first complete on a cold worker, {count} project(s) of "
              f"{tasks_per_project} tasks: {figures[str(count)]:.0f} ms", flush=True)
    return figures


def worker_classes(root: Path, env: dict[str, str], agents: int, cycles: int, workers: int,
                   repeat: int) -> dict[str, float]:
    """8-agent cycles on sync workers vs threaded (gthread) ones, runs alternating between
    two servers started alike, so the ratio compares figures taken side by side."""
    settings = {"sync": "1",
                "gthread": os.environ.get("TASKDRIVER_THREADS", str(DEFAULT_THREADS))}
    servers, projects = {}, {}
    try:
        for name, threads in settings.items():
            servers[name] = LiveServer(root / f"threads-{name}", workers=workers,
                                       TASKDRIVER_THREADS=threads, **env).start()
            projects[name] = operator(servers[name], "POST", "/api/projects", json={
                "name": f"threads-{name}",
                "config": {"defaultLeaseDurationMinutes": 30}})["data"]
            bulk_load(servers[name], projects[name]["id"], 1000)
        rates: dict[str, list[float]] = {name: [] for name in settings}
        for run in range(repeat):
            for name, server in servers.items():
                bulk_load(server, projects[name]["id"], cycles)
                rates[name].append(_timed_cycles(server, projects[name]["name"], agents,
                                                 cycles, run)["cycles_per_s"])
    finally:
        for server in servers.values():
            server.stop()
    figures = {name: statistics.median(values) for name, values in rates.items()}
    figures["ratio"] = figures["gthread"] / figures["sync"]
    print(f"agent cycle, {agents} agents: sync workers {figures['sync']:.0f} cycles/s, "
          f"threaded {figures['gthread']:.0f} cycles/s ({figures['ratio']:.2f}x)", flush=True)
    return figures


def _peak_rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run(bulk_sizes: list[int], depths: list[int], agent_counts: list[int], cycles: int,
        workers: int, repeat: int, storage_url: str | None,
        owner_projects: tuple[int, ...] = OWNER_PROJECTS, waiting: int = 100_000) -> dict:
    env = {"TASKDRIVER_ADMIN_TOKEN": TOKEN}
    if storage_url:
        env["TASKDRIVER_STORAGE_URL"] = storage_url
    results: dict[str, Any] = {"machine": {"cores": os.cpu_count(), "workers": workers,
                                           "fsync": True, "repeat": repeat, "mixed_queue": MIXED,
                                           "limited_type": LIMITED is not None,
                                           "cycles_per_run": cycles,
                                           "storage": "postgresql" if storage_url else "file"},
                               "bulk_load": {}, "floor": {},
                               "agent_cycle": {}}
    root = Path(tempfile.mkdtemp(prefix="taskdriver-bench-"))
    try:
        server = LiveServer(root / "data", workers=workers, **env)
        floor_app = "bench.pg_floor_app:app" if storage_url else "bench.floor_app:app"
        floor = LiveServer(root / FLOOR, workers=workers, app=floor_app, **env)
        server.start()
        floor.start()
        try:
            largest = ""
            queues: dict[int, dict[str, str]] = {}
            for depth in sorted(set(bulk_sizes) | set(depths)):
                project = operator(server, "POST", "/api/projects", json={
                    "name": f"bench-{depth}",
                    "config": {"defaultLeaseDurationMinutes": 30}})["data"]
                _two_types(server, project["id"])
                rate = bulk_load(server, project["id"], depth)
                largest = project["id"]
                if depth in bulk_sizes:
                    floor_rate = bulk_load(floor, FLOOR, depth)
                    results["bulk_load"][str(depth)] = {"tasks_per_s": rate,
                                                        "floor_tasks_per_s": floor_rate,
                                                        "vs_floor": rate / floor_rate}
                    print(f"bulk load {depth:>7} tasks: {rate:8.0f} tasks/s "
                          f"({rate / floor_rate:.2f}x the floor's {floor_rate:.0f})",
                          flush=True)
                if depth in depths:
                    queues[depth] = project
            analyze(storage_url)
            for agents in agent_counts:
                by_depth, floor_stats = agent_cycles(server, queues, agents, cycles, workers,
                                                     repeat, floor)
                results["floor"][str(agents)] = floor_stats
                print(f"floor, {agents} agents: {floor_stats['cycles_per_s']:7.1f} cycles/s",
                      flush=True)
                for depth, stats in by_depth.items():
                    stats["vs_floor"] = stats["cycles_per_s"] / floor_stats["cycles_per_s"]
                    results["agent_cycle"][f"{depth}x{agents}"] = {
                        "depth": depth, "agents": agents, **stats}
                    print(f"agent cycle depth {depth:>7}, {agents} agents: "
                          f"{stats['cycles_per_s']:7.1f} cycles/s "
                          f"({stats['vs_floor']:.2f}x the floor), "
                          f"next-task p50 {stats['next_task_p50_ms']:.1f} ms "
                          f"p99 {stats['next_task_p99_ms']:.1f} ms", flush=True)
            results["waiting"] = waiting_vs_none(
                server, operator, lambda name: operator(server, "POST", "/api/projects", json={
                    "name": name, "config": {"defaultLeaseDurationMinutes": 30}})["data"],
                bulk_load, _timed_cycles, waiting, max(agent_counts), cycles, repeat,
                lambda: analyze(storage_url))
            if storage_url:  # what a project shared by every agent costs on PostgreSQL
                results["spread"] = one_vs_spread(
                    server, lambda name: operator(server, "POST", "/api/projects", json={
                        "name": name, "config": {"defaultLeaseDurationMinutes": 30}})["data"],
                    bulk_load, _timed_cycles, max(agent_counts), cycles, repeat)
        finally:
            server.stop()
            floor.stop()
        biggest = max(set(bulk_sizes) | set(depths))
        results["cold_start"] = {"tasks": biggest, **cold_start(root / "data", largest, env)}
        print(f"cold start on {biggest} tasks: "
              f"{results['cold_start']['first_request_s']:.2f} s, worker RSS "
              f"{results['cold_start']['worker_rss_mb']:.0f} MB", flush=True)
        if not storage_url:  # file-backend figures; servers that would share one database
            results["cold_complete_ms"] = cold_complete(
                root, env, owner_projects, OWNER_TASKS_PER_PROJECT, max(3, repeat))
            results["worker_classes"] = worker_classes(root, env, max(agent_counts), cycles,
                                                       workers, repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    low, high = str(min(depths)), str(max(depths))
    for agents in agent_counts:
        flat = (results["agent_cycle"][f"{high}x{agents}"]["cycles_per_s"]
                / results["agent_cycle"][f"{low}x{agents}"]["cycles_per_s"])
        results.setdefault("ratios", {})[f"cycle_{high}_vs_{low}_{agents}_agents"] = flat
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke run (under a minute)")
    parser.add_argument("--bulk", default="1000,10000,100000",
                        help="bulk load sizes to time (comma list)")
    parser.add_argument("--tasks", default="1000,100000",
                        help="queue depths for the agent cycle (comma list)")
    parser.add_argument("--agents", default="1,8", help="concurrent agents (comma list)")
    parser.add_argument("--cycles", type=int, default=2000, help="agent cycles per run")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per agent-cycle figure; the table shows medians")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="gunicorn workers (the server's default: one per core)")
    parser.add_argument("--storage-url", default=None,
                        help="TASKDRIVER_STORAGE_URL to benchmark instead of file storage "
                             "(use an empty database or schema)")
    parser.add_argument("--mixed", action="store_true",
                        help="queues of mixed priorities (-5..5) with a quarter of the tasks "
                             "delayed by an hour")
    parser.add_argument("--limited", action="store_true",
                        help="two task types, one with maxConcurrent 1, tasks alternating")
    parser.add_argument("--waiting", type=int, default=100_000,
                        help="waiting tasks (dependencies) beside the claims of one row")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()
    global MIXED, LIMITED
    MIXED = args.mixed
    LIMITED = {} if args.limited else None
    bulk_sizes = [int(x) for x in args.bulk.split(",")]
    depths = [int(x) for x in args.tasks.split(",")]
    cycles = args.cycles
    repeat = args.repeat
    owner_projects = OWNER_PROJECTS
    waiting = args.waiting
    if args.quick:
        bulk_sizes, depths, cycles, repeat = [1000, 5000], [1000, 5000], 300, 1
        owner_projects, waiting = (1, 5), 5000
    results = run(bulk_sizes, depths, [int(x) for x in args.agents.split(",")], cycles,
                  args.workers, repeat, args.storage_url, owner_projects, waiting)
    results["table"] = table(results)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(results["table"])


if __name__ == "__main__":
    main()
