"""Operational endpoints outside `/api`: health and metrics, open to scrapers (no token)."""

from __future__ import annotations

import time
from typing import Any

from flask import Response, current_app

from .. import __version__
from ..errors import StorageError
from .blueprint import Blueprint
from .context import driver, services
from .envelope import envelope
from .errors import error_response
from .responses import HealthSchema, MetricsJsonSchema

blp = Blueprint("ops", __name__, description="Health and metrics; no token needed")

STARTED_AT = time.time()


@blp.route("/health")
@blp.response(200, envelope(HealthSchema))
@blp.alt_response(503, schema=envelope(HealthSchema), description="Storage is not writable")
@blp.doc(security=[])
def health() -> Any:
    """Whether the server can write to its storage now."""
    try:
        driver().check_storage()
        healthy = True
    except StorageError as exc:
        current_app.logger.error("health check failed: %s", exc.message)
        healthy = False
    now = time.time()
    data = {"status": "healthy" if healthy else "unhealthy", "timestamp": now,
            "uptime": round(now - STARTED_AT, 3), "version": __version__,
            "storage": {"healthy": healthy, "provider": driver().storage_provider}}
    if not healthy:
        return error_response(503, "Storage is not writable",
                              data=HealthSchema().dump(data))
    return {"data": data}


@blp.route("/metrics")
@blp.doc(security=[], responses={"200": {
    "description": "Prometheus text exposition, summed over every worker",
    "content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics() -> Response:
    """Request counts and latency by route, queue counters and task gauges."""
    return services().metrics.exposition()


@blp.route("/metrics/json")
@blp.response(200, envelope(MetricsJsonSchema))
@blp.doc(security=[])
def metrics_json() -> dict[str, Any]:
    """Request totals over every worker, active sessions, and this worker's resources."""
    shared = services()
    totals = shared.metrics.request_totals()
    return {"data": {
        "requests_total": totals.total, "requests_success": totals.success,
        "requests_error": totals.error,
        "response_time_avg": round(totals.seconds / totals.total * 1000, 3)
        if totals.total else 0.0,
        "active_sessions": shared.authenticator.active_sessions(),
        "system": shared.metrics.system_usage(STARTED_AT)}}
