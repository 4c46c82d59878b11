"""Where an agent cycle's time goes: cProfile of every request under the real gunicorn.

    python bench/profile_requests.py [--agents 8] [--cycles 2000] [--workers N] [--top 25]
    python bench/profile_requests.py --bulk 100000   # bulk loads of 1,000 tasks instead

Serves TaskDriver with `bench/profile.gunicorn.conf.py` (TaskDriver's gunicorn settings plus a
profiler switched on from gunicorn's pre_request to its post_request hook in each request's
own thread), drives it with the benchmark's agents (next-task + complete, file storage, fsync
on), then merges the workers' profiles and prints the time per request spent in each stage:
the HTTP server, authentication and session touch, body checks and argument parsing, the
storage section (waiting for the lock, catching up, the append and its fsync), the
queue rules, serialization, metrics and logging. cProfile slows Python code down more than
system calls, so the shares of the pure-Python stages are upper bounds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pstats
import shutil
import tempfile
from pathlib import Path

import bench

from live_server import LiveServer  # bench puts tests/ on the path

ROOT = Path(__file__).resolve().parent.parent
# (label, file suffix, function name): each stage by its entry point's cumulative time.
STAGES = (
    ("whole request in the app (Flask.wsgi_app)", "flask/app.py", "wsgi_app"),
    ("  before-request hooks", "flask/app.py", "preprocess_request"),
    ("    correlation id and clock", "taskdriver/api/http.py", "_identify_request"),
    ("    metrics: start timer", "prometheus_flask_exporter/__init__.py", "before_request"),
    ("    authentication and session touch", "taskdriver/service/sessions.py", "authenticate"),
    ("    JSON body checks", "taskdriver/api/http.py", "_check_json_body"),
    ("  the view (dispatch_request)", "flask/app.py", "dispatch_request"),
    ("    argument parsing and validation", "webargs/core.py", "parse"),
    ("    service: next_task", "taskdriver/service/queue.py", "next_task"),
    ("    service: complete_task", "taskdriver/service/queue.py", "complete_task"),
    ("    bulk items: load and check", "taskdriver/api/tasks.py", "_load_items"),
    ("    service: create_tasks", "taskdriver/service/tasks.py", "create_tasks"),
    ("      new tasks built and indexed", "taskdriver/service/tasks.py", "new_tasks"),
    ("      project lock: wait and hold", "taskdriver/storage/journal.py", "locked"),
    ("      catching up with other workers", "taskdriver/storage/journal.py", "_catch_up"),
    ("      journal append (write + fsync)", "taskdriver/storage/journal.py", "append"),
    ("        fsync", "~", "<built-in method posix.fsync>"),
    ("        compaction (snapshot written)", "taskdriver/storage/journal.py", "_compact"),
    ("    response serialization (marshmallow)", "marshmallow/schema.py", "dump"),
    ("    response serialization (compiled dump)", "Envelope>", "dump"),
    ("  JSON encoding of the answer", "flask/json/provider.py", "response"),
    ("  after-request hooks", "flask/app.py", "process_response"),
    ("    metrics: observe", "prometheus_flask_exporter/__init__.py", "after_request"),
    ("    access log and headers", "taskdriver/api/http.py", "_finish_response"),
    ("  teardown (metrics exceptions, app context)", "flask/app.py", "do_teardown_request"),
)


def collect(agents: int, cycles: int, workers: int, bulk: int, output: Path) -> pstats.Stats:
    """Run the agents (or, with `bulk`, that many tasks of bulk loads) against a profiled
    server; the merged profile of every request."""
    root = Path(tempfile.mkdtemp(prefix="taskdriver-profile-"))
    profiles = root / "profiles"
    profiles.mkdir()
    server = LiveServer(root / "data", workers=workers,
                        config=ROOT / "bench" / "profile.gunicorn.conf.py",
                        TASKDRIVER_ADMIN_TOKEN=bench.TOKEN,
                        TASKDRIVER_PROFILE_DIR=str(profiles))
    try:
        server.start()
        project = bench.operator(server, "POST", "/api/projects", json={
            "name": "profile", "config": {"defaultLeaseDurationMinutes": 30}})["data"]
        if bulk:
            bench.bulk_load(server, project["id"], bulk)
        else:
            bench.bulk_load(server, project["id"], cycles + 1000)
            bench._timed_cycles(server, "profile", agents, cycles, 0)
        server.stop()  # workers write their profiles as they exit
        files = sorted(profiles.glob("*.prof"))
        if not files:
            raise SystemExit(f"no profiles written: {server.log()}")
        stats = pstats.Stats(*map(str, files))
        stats.dump_stats(str(output))
        return stats
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> tuple[float, int]:
    """(cumulative seconds, primitive calls) of the functions that match, summed."""
    seconds, calls = 0.0, 0
    for (filename, _, function), (primitive, _, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if function == name and filename.endswith(suffix):
            seconds += cum
            calls += primitive
    return seconds, calls


def report(stats: pstats.Stats, top: int) -> None:
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    requests = cumulative(stats, "flask/app.py", "wsgi_app")[1] or 1
    calls = sum(row[1] for row in stats.stats.values())  # type: ignore[attr-defined]
    print(f"{requests} requests, {total / requests * 1000:.2f} ms of profiled time each "
          f"(profiler overhead included), {calls / requests:.0f} Python function calls "
          f"each (a count: the same on a busy machine)\n")
    print(f"{'stage':<52} {'ms/request':>10} {'share':>7}")
    print(f"{'all request work (gunicorn included)':<52} {total / requests * 1000:>10.3f} "
          f"{100:>6.1f}%")
    for label, suffix, name in STAGES:
        seconds, _ = cumulative(stats, suffix, name)
        if not seconds:
            continue  # a stage of the other kind of run
        print(f"{label:<52} {seconds / requests * 1000:>10.3f} {seconds / total * 100:>6.1f}%")
    print()
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--bulk", type=int, default=0,
                        help="profile bulk loads of this many tasks instead of agent cycles")
    parser.add_argument("--top", type=int, default=25, help="functions by own time to list")
    parser.add_argument("--output", default=str(ROOT / "build" / "requests.prof"),
                        help="where to keep the merged profile (for pstats or snakeviz)")
    args = parser.parse_args()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    multiprocessing.set_start_method("fork")
    report(collect(args.agents, args.cycles, args.workers, args.bulk, output), args.top)


if __name__ == "__main__":
    main()
