"""gunicorn settings for TaskDriver; every value can be overridden on the command line.

Threaded workers (gthread): most requests are short (one lock, one append, one fsync), but a
long-polling `next-task` waits up to 30 s for work while holding nothing but its thread, so
each worker runs several threads and a waiting agent never blocks the others. The app stays
a synchronous WSGI app; storage is safe across threads and processes alike. Workers scale
with cores; TaskDriver writes its own access log.
"""

import glob
import multiprocessing
import os
import shutil
import tempfile

from taskdriver.config import DEFAULT_THREADS

METRICS_DIR_PREFIX = "taskdriver-metrics-"


def _remove_metrics_dirs_of_dead_servers() -> None:
    """A master killed with -9 never runs `on_exit`; its folder is removed by the next start."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{METRICS_DIR_PREFIX}*-")):
        pid = os.path.basename(path).removeprefix(METRICS_DIR_PREFIX).split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


# Workers share Prometheus counters through files in this directory. It must be set before
# any worker imports prometheus_client, and start empty, so each server start gets a fresh
# one unless the operator chose a directory. Its name carries the master's pid.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _remove_metrics_dirs_of_dead_servers()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-", suffix="-")

bind = os.environ.get("TASKDRIVER_BIND", "127.0.0.1:3000")
# One worker per core. The usual 2 x cores + 1 is for sync workers, which idle while they
# wait; here the threads wait, and every extra process costs twice: each holds the projects
# it serves in memory, and each replays the others' writes before its next one (a bulk
# load into 100,000 tasks ran 4,232 tasks/s on 5 workers, 6,141 on 2, on 2 cores).
workers = int(os.environ.get("TASKDRIVER_WORKERS", multiprocessing.cpu_count()))
# A waiting agent holds one sleeping thread (about 45 KB of memory, no CPU: one watcher
# thread per project wakes the waiters, see taskdriver/service/waiting.py); all but an
# eighth of a worker's threads may wait, so each worker holds 896 waiting agents by default
# and the rest of its threads serve everything else. TASKDRIVER_THREADS=1 gives plain sync workers
# (for comparison: a waiting poll then blocks its whole worker).
threads = int(os.environ.get("TASKDRIVER_THREADS", DEFAULT_THREADS))
worker_class = "gthread" if threads > 1 else "sync"
# Open connections a worker keeps, busy or idle between an agent's requests.
worker_connections = threads + 1024
timeout = 30  # a request stuck this long is killed and its worker replaced
graceful_timeout = 30  # on SIGTERM, in-flight requests get this long to finish
keepalive = 2
accesslog = None
errorlog = "-"
loglevel = "info"
wsgi_app = "wsgi:app"
# gunicorn 23+ opens a control socket in the home directory; TaskDriver needs none, and
# several servers on one host would otherwise fight over the one path.
control_socket_disable = True
# TASKDRIVER_TRUSTED_PROXIES is the one switch for X-Forwarded-* (the app applies it with
# ProxyFix): gunicorn itself believes no forwarded header from anyone, loopback included.
forwarded_allow_ips = ""
# Long request lines and headers reach the app, which answers them in its envelope (a
# 5,000-character path id gets 404, a 10 KB bearer token 401); beyond these gunicorn refuses.
limit_request_line = 8190  # gunicorn's maximum
limit_request_field_size = 65536


MALLOC_ARENAS = 2  # glibc's default is 8 per core, one more for each thread that contends


def post_fork(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """Cap glibc's malloc arenas before the worker starts its threads.

    Every thread that finds the arenas busy gets one of its own (a 64 MB heap it only
    grows); the memory a request body or a snapshot takes there stays with that arena. With
    a worker's hundreds of threads that made RSS follow history instead of live work: 10
    arenas of about 19 MB each after 300,000 tasks had passed through a worker holding
    none of them (`make long-run`). Python allocates under its GIL, so two arenas cost no
    waiting. Setting MALLOC_ARENA_MAX in the environment would come too late: the workers
    are forks of a master whose malloc is already set up. Elsewhere than glibc: nothing.
    """
    import ctypes
    import ctypes.util

    m_arena_max = -8  # from glibc's malloc.h
    libc_name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(libc_name), "mallopt", None) if libc_name else None
    if mallopt is not None:
        mallopt(m_arena_max, MALLOC_ARENAS)


def post_worker_init(worker):
    """The worker's signals, once gunicorn's own handlers are in place.

    SIGTERM stops gracefully (in-flight requests finish); SIGINT and SIGQUIT (Ctrl-C in a
    terminal, which reaches the whole process group, and the master's own SIGQUIT to each
    worker right after) quit at once. Both first answer every waiting long poll (no task):
    a poll left waiting would outlast `graceful_timeout` and be cut off instead.

    A quit happens once, and without gunicorn's threaded worker's own quit handler, which
    shuts the thread pool down from inside the signal handler: when the signal landed while
    the main thread was handing a request to that pool (or handling the first signal), the
    shutdown waited for a lock the interrupted code held, and the worker hung until the
    master killed it 30 s later ("Worker (pid:…) was sent SIGKILL! Perhaps out of
    memory?"), one Ctrl-C in three (`tests/test_live_ops.py`). The base worker's quit ends
    the process the same way, leaving the pool's threads to finish as the process exits.
    """
    import signal

    from gunicorn.workers.base import Worker

    from taskdriver.extension import EXTENSION

    services = getattr(worker.wsgi, "extensions", {}).get(EXTENSION)

    def answer_waiting_polls():
        if services is not None:  # None: another app under this configuration (a floor)
            services.driver.waits.close()

    graceful_stop = signal.getsignal(signal.SIGTERM)

    def stop(signum, frame):
        answer_waiting_polls()
        graceful_stop(signum, frame)

    quitting = []

    def quit_once(signum, frame):
        if not quitting:
            quitting.append(signum)
            answer_waiting_polls()
            Worker.handle_quit(worker, signum, frame)

    signal.signal(signal.SIGTERM, stop)
    for signum in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, quit_once)


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """Fold a dead worker's live gauges out of the shared metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # noqa: ARG001
    """Remove the metrics directory this configuration created."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(path).startswith(METRICS_DIR_PREFIX):
        shutil.rmtree(path, ignore_errors=True)
