"""gunicorn settings for TaskDriver; every value can be overridden on the command line.

Sync workers: each request is short (one lock, one append, one fsync), so processes scale
with cores without threads contending for the GIL. TaskDriver writes its own access log.
"""

import multiprocessing
import os
import shutil
import tempfile

# Workers share Prometheus counters through files in this directory. It must be set before
# any worker imports prometheus_client, and start empty, so each server start gets a fresh
# one unless the operator chose a directory.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="taskdriver-metrics-")

bind = os.environ.get("TASKDRIVER_BIND", "127.0.0.1:3000")
workers = int(os.environ.get("TASKDRIVER_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
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


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """Fold a dead worker's live gauges out of the shared metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # noqa: ARG001
    """Remove the metrics directory this configuration created."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(path).startswith("taskdriver-metrics-"):
        shutil.rmtree(path, ignore_errors=True)
