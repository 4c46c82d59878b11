"""Long run (issue 24): months of work with flat memory. Tasks are created, completed and
archived through a real gunicorn (file backend) in rounds; each round reports the worker's
RSS and the archiving time, then a restart measures the cold start and every task is read
back by id.

    python tests/long_run.py [--tasks 1000000] [--round 100000] [--agents 8] [--workers 2]
                                                          (what `make long-run` runs)
    python tests/long_run.py --tasks 20000 --round 5000   (a smoke run)

Archiving runs `flask taskdriver archive --older-than 0` after each round (every finished
task is old enough: the same as an `archiveAfterDays` of minutes, without the wait).
Targets (issue 24): RSS after the last round within 20% of the first round's, cold start
under 1 s, archiving 100,000 tasks under 5 s, every task readable by id, and no request
waiting on the archiving for more than one normal write: an agent extends its lease every
20 ms before and during each archiving (`extendMs...`), beside the round's 1,000-task bulk
creates (`bulkCreateMs`), the writes that hold a project longest.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).parent))

from conftest import ADMIN_TOKEN  # noqa: E402
from live_server import LiveServer  # noqa: E402

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BULK = 1000


def call(http: requests.Session, server: LiveServer | str, method: str, path: str,
         **kwargs: Any) -> Any:
    url = server if isinstance(server, str) else server.url
    response = http.request(method, f"{url}{path}", headers=HEADERS, timeout=120, **kwargs)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()


def worker_rss_mb(server: LiveServer) -> float:
    """The resident memory of the server's largest worker (every worker holds the project)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    largest_kb = 0
    for child in children:
        status = Path(f"/proc/{child}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        largest_kb = max(largest_kb, int(match.group(1)) if match else 0)
    return largest_kb / 1024


def create(server: LiveServer, project_id: str, start: int, count: int, agents: int
           ) -> dict[str, float]:
    """Create the round's tasks in bulks of 1,000; the bulk requests' latencies (ms)."""
    def one_bulk(offset: int) -> float:
        with requests.Session() as http:
            size = min(BULK, start + count - offset)
            began = time.perf_counter()
            call(http, server, "POST", f"/api/projects/{project_id}/tasks/bulk",
                 json={"tasks": [{"instructions": f"long run {n}"}
                                 for n in range(offset, offset + size)]})
            return (time.perf_counter() - began) * 1000

    with ThreadPoolExecutor(agents) as pool:
        return summary(list(pool.map(one_bulk, range(start, start + count, BULK))))


def processes(count: int) -> Any:
    """A pool of client processes, which a SIGTERM ends quietly (not as the run itself)."""
    return multiprocessing.get_context("fork").Pool(
        count, initializer=signal.signal, initargs=(signal.SIGTERM, signal.SIG_DFL))


def agent(url: str, project_id: str, slot: int) -> list[str]:
    """One agent (a process of its own, so the client's GIL does not cap the server):
    lease and complete until the queue is empty; the ids it completed."""
    mine = []
    with requests.Session() as http:
        while True:
            body = call(http, url, "POST", f"/api/agents/a{slot}/next-task",
                        json={"projectId": project_id})
            if not body["success"] or body["data"]["task"] is None:
                return mine
            task_id = body["data"]["task"]["id"]
            call(http, url, "POST", f"/api/tasks/{task_id}/complete",
                 json={"agentName": f"a{slot}", "result": task_id})
            mine.append(task_id)


def complete_all(server: LiveServer, project_id: str, agents: int) -> list[str]:
    """Lease and complete until the queue is empty; the ids completed."""
    with processes(agents) as pool:
        done = pool.starmap(agent, [(server.url, project_id, slot) for slot in range(agents)])
    return [task_id for mine in done for task_id in mine]


def archive(server: LiveServer) -> tuple[int, float]:
    """(tasks moved, seconds the archive command spent archiving)."""
    result = server.cli("archive", "--older-than", "0")
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    moved = int(re.search(r"^archivedTasks=(\d+)", result.stdout, re.MULTILINE).group(1))
    seconds = float(re.search(r"^seconds=([\d.]+)", result.stdout, re.MULTILINE).group(1))
    return moved, seconds


class WriteProbe:
    """An agent extending its lease again and again in the project being archived: how
    long a normal write takes before the archiving and while it runs (the target: no
    request waits on the archiving for more than one normal write)."""

    def __init__(self, server: LiveServer, project_id: str) -> None:
        self.server = server
        self.http = requests.Session()
        call(self.http, server, "POST", f"/api/projects/{project_id}/tasks",
             json={"instructions": "write probe"})
        body = call(self.http, server, "POST", "/api/agents/prober/next-task",
                    json={"projectId": project_id})
        self.task_id = body["data"]["task"]["id"]

    def _extend(self) -> float:
        began = time.perf_counter()
        call(self.http, self.server, "POST", f"/api/tasks/{self.task_id}/extend-lease",
             json={"agentName": "prober", "extensionMinutes": 1})
        return (time.perf_counter() - began) * 1000

    def alone(self, seconds: float) -> dict[str, float]:
        """Latencies (ms) of extends for `seconds` with nothing else running."""
        deadline = time.monotonic() + seconds
        latencies = []
        while time.monotonic() < deadline:
            latencies.append(self._extend())
            time.sleep(0.02)
        return summary(latencies)

    def beside(self, action: Any) -> tuple[Any, dict[str, float]]:
        """`action()`'s result, and the latencies of the extends made while it ran."""
        latencies: list[float] = []
        done = threading.Event()

        def probe() -> None:
            while not done.is_set():
                latencies.append(self._extend())
                time.sleep(0.02)

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            result = action()
        finally:
            done.set()
            prober.join()
        return result, summary(latencies)

    def finish(self) -> None:
        call(self.http, self.server, "POST", f"/api/tasks/{self.task_id}/complete",
             json={"agentName": "prober", "result": "probe"})
        self.http.close()


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies) or [0.0]
    return {"n": len(latencies), "p50": round(ordered[len(ordered) // 2], 1),
            "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
            "max": round(ordered[-1], 1)}


def unreadable(url: str, task_ids: list[str]) -> int:
    """How many of these tasks (one reader process's share) could not be read by id as
    archived and completed."""
    missing = 0
    with requests.Session() as http:
        for task_id in task_ids:
            response = http.get(f"{url}/api/tasks/{task_id}", headers=HEADERS, timeout=120)
            data = response.json().get("data") or {}
            if (response.status_code != 200 or not data.get("archived")
                    or data.get("result") != task_id):
                missing += 1
    return missing


def read_every(server: LiveServer, task_ids: list[str], readers: int) -> int:
    """How many of the tasks could not be read by id, read by `readers` processes."""
    size = -(-len(task_ids) // readers)
    with processes(readers) as pool:
        return sum(pool.starmap(unreadable, [(server.url, task_ids[i:i + size])
                                             for i in range(0, len(task_ids), size)]))


def run(tasks: int, round_size: int, agents: int, workers: int, root: Path
        ) -> dict[str, Any]:
    server = LiveServer(root / "data", workers=workers,
                        TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN).start()
    report: dict[str, Any] = {"tasks": tasks, "round": round_size, "workers": workers,
                              "rounds": []}
    try:
        with requests.Session() as http:
            project_id = call(http, server, "POST", "/api/projects", json={
                "name": "long-run", "config": {"archiveAfterDays": 0.01}})["data"]["id"]
        finished: list[str] = []
        for start in range(0, tasks, round_size):
            began = time.monotonic()
            bulk_ms = create(server, project_id, start, min(round_size, tasks - start), agents)
            finished += complete_all(server, project_id, agents)
            probe = WriteProbe(server, project_id)  # not among `finished`: read back apart
            writes_alone = probe.alone(3.0)
            (moved, archive_seconds), writes_archiving = probe.beside(lambda: archive(server))
            probe.finish()
            with requests.Session() as http:  # the worker catches up with the archiving
                stats = call(http, server, "GET", f"/api/projects/{project_id}/stats")["data"]
            entry = {"done": len(finished), "archived": moved,
                     "archiveSeconds": round(archive_seconds, 2),
                     "archiveSecondsPer100k": round(archive_seconds * 100_000 / max(moved, 1), 2),
                     "rssMb": round(worker_rss_mb(server), 1),
                     "extendMsAlone": writes_alone, "extendMsArchiving": writes_archiving,
                     "bulkCreateMs": bulk_ms,
                     "totalTasks": stats["project"]["stats"]["totalTasks"],
                     "archivedTasks": stats["project"]["stats"]["archivedTasks"],
                     "roundSeconds": round(time.monotonic() - began, 1)}
            report["rounds"].append(entry)
            print(json.dumps(entry), flush=True)
        server.stop()
        began = time.monotonic()
        server.start()
        report["serverStartSeconds"] = round(time.monotonic() - began, 2)
        began = time.monotonic()
        with requests.Session() as http:  # the first request loads the project's store
            call(http, server, "GET", f"/api/projects/{project_id}/stats")
        report["coldStartSeconds"] = round(time.monotonic() - began, 3)
        report["rssAfterRestartMb"] = round(worker_rss_mb(server), 1)
        began = time.monotonic()
        report["unreadable"] = read_every(server, finished, agents)
        report["readSeconds"] = round(time.monotonic() - began, 1)
        first, last = report["rounds"][0]["rssMb"], report["rounds"][-1]["rssMb"]
        report["rssGrowth"] = round(last / first - 1, 3)
        report["dataDirMb"] = round(sum(p.stat().st_size for p in (root / "data").rglob("*")
                                        if p.is_file()) / 2**20, 1)
        return report
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--round", type=int, default=100_000, dest="round_size")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("long run: terminated"))  # clean up
    with tempfile.TemporaryDirectory(prefix="taskdriver-long-run-") as root:
        report = run(args.tasks, args.round_size, args.agents, args.workers, Path(root))
    print(json.dumps(report, indent=2))
    failures = []
    if report["unreadable"]:
        failures.append(f"{report['unreadable']} tasks not readable by id")
    if report["rssGrowth"] > 0.2:
        failures.append(f"worker RSS grew {report['rssGrowth']:.0%} after the first round")
    if report["coldStartSeconds"] >= 1.0:
        failures.append(f"cold start took {report['coldStartSeconds']} s")
    if failures:
        sys.exit("long run: " + "; ".join(failures))


if __name__ == "__main__":
    main()
