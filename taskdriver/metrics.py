"""Prometheus metrics: HTTP traffic, queue events and task gauges, over every worker.

Under gunicorn, `gunicorn.conf.py` points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory
before any worker starts; prometheus_client then keeps each worker's counters in files
there and `/metrics` sums them. Without it (tests, a single process) the app's own
registry is used. Task gauges are computed at scrape time from the storage indexes, so a
scrape costs O(projects), not O(tasks).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
from flask import Flask, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_flask_exporter import PrometheusMetrics

from .events import QueueEvents
from .models import OPERATOR, TaskStatus
from .service import Authenticator, TaskDriver

PREFIX = "taskdriver"
REQUEST_METRIC = f"{PREFIX}_http_request_duration_seconds"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED_ROUTE = "<unmatched>"


def multiprocess_dir() -> str | None:
    """The directory worker processes share their metrics through, if any."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def route(request: Request) -> str:
    """The route template (`/api/tasks/<uuid:task_id>`), never the raw path: bounded labels."""
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE


class PrometheusEvents(QueueEvents):
    """Counts the service's queue events."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        def counter(name: str, description: str) -> Counter:
            return Counter(f"{PREFIX}_{name}", description, ["project"], registry=registry)

        self.created = counter("tasks_created_total", "Tasks created")
        self.completed = counter("tasks_completed_total", "Tasks that became completed")
        self.failed = counter("tasks_failed_total", "Tasks that became failed")
        self.expired = counter("leases_expired_total", "Expired leases reclaimed")
        self.woken = Counter(f"{PREFIX}_long_poll_wakeups_total",
                             "Waiting next-task requests woken to look for work",
                             registry=registry)
        self.waiting = Gauge(f"{PREFIX}_long_polls_waiting",
                             "next-task requests waiting for work now",
                             multiprocess_mode="livesum", registry=registry)

    def tasks_created(self, project_id: str, count: int) -> None:
        if count:
            self.created.labels(project_id).inc(count)

    def task_completed(self, project_id: str) -> None:
        self.completed.labels(project_id).inc()

    def task_failed(self, project_id: str) -> None:
        self.failed.labels(project_id).inc()

    def leases_expired(self, project_id: str, count: int) -> None:
        self.expired.labels(project_id).inc(count)

    def long_polls_woken(self, count: int) -> None:
        self.woken.inc(count)

    def long_polls_waiting(self, change: int) -> None:
        self.waiting.inc(change)


class StorageCollector:
    """Task gauges by project and status, and active sessions, read at scrape time."""

    def __init__(self, driver: TaskDriver, authenticator: Authenticator) -> None:
        self.driver = driver
        self.authenticator = authenticator

    def collect(self) -> Iterator[Metric]:
        tasks = GaugeMetricFamily(f"{PREFIX}_tasks", "Tasks by project and status",
                                  labels=["project", "project_name", "status"])
        views, _ = self.driver.list_projects(OPERATOR, "all", limit=sys.maxsize, offset=0)
        for view in views:
            for status in TaskStatus:
                tasks.add_metric([view.project.id, view.project.name, status.value],
                                 view.counts[status])
        yield tasks
        yield GaugeMetricFamily(f"{PREFIX}_active_sessions", "Unexpired agent sessions",
                                value=self.authenticator.active_sessions())


@dataclass(frozen=True)
class RequestTotals:
    """Requests answered by every worker since the server started."""

    total: int
    success: int
    error: int
    seconds: float


class Metrics:
    """The app's metrics: request instrumentation, queue counters and the scrape output."""

    def __init__(self, app: Flask, driver: TaskDriver, authenticator: Authenticator) -> None:
        self.registry = CollectorRegistry()
        self.shared = multiprocess_dir() is not None
        PrometheusMetrics(app, path=None, registry=self.registry, group_by=route,
                          buckets=LATENCY_BUCKETS, defaults_prefix=PREFIX,
                          excluded_paths=["^/metrics$"])
        # In multiprocess mode values live in files: registering them here as well would
        # report this worker's share twice.
        self.events = PrometheusEvents(None if self.shared else self.registry)
        self.collector = StorageCollector(driver, authenticator)
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # starts the CPU window measured by system_usage()

    def _traffic_registry(self) -> CollectorRegistry:
        if not self.shared:
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry

    def exposition(self) -> Response:
        """The Prometheus text format, summed over every worker."""
        registry = self._traffic_registry()
        body = generate_latest(registry)
        scrape = CollectorRegistry()
        scrape.register(self.collector)
        body += generate_latest(scrape)
        return Response(body, content_type=CONTENT_TYPE_LATEST)

    def request_totals(self) -> RequestTotals:
        """Count requests by outcome from the latency histogram of every worker."""
        total = success = 0
        seconds = 0.0
        for metric in self._traffic_registry().collect():
            if metric.name != REQUEST_METRIC:
                continue
            for sample in metric.samples:
                if sample.name == f"{REQUEST_METRIC}_count":
                    count = int(sample.value)
                    total += count
                    if int(sample.labels.get("status", 500)) < 400:
                        success += count
                elif sample.name == f"{REQUEST_METRIC}_sum":
                    seconds += sample.value
        return RequestTotals(total, success, total - success, seconds)

    def system_usage(self, started_at: float) -> dict[str, Any]:
        """This worker's resident memory (MB), CPU percent since the last call, uptime (s)."""
        return {"memory_usage": round(self.process.memory_info().rss / 2**20, 1),
                "cpu_usage": self.process.cpu_percent(None),
                "uptime": round(time.time() - started_at, 3)}
