"""Operational endpoints outside `/api`: health (and, later, metrics)."""

from __future__ import annotations

import time
from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from .. import __version__
from ..errors import StorageError
from .context import driver
from .errors import error_response
from .schemas import HealthSchema, envelope

blp = Blueprint("ops", __name__, description="Health and metrics; no token needed")

STARTED_AT = time.time()


@blp.route("/health")
@blp.response(200, envelope(HealthSchema))
@blp.alt_response(503, schema=envelope(HealthSchema), description="Storage is not writable")
@blp.doc(security=[])
def health() -> Any:
    """Whether the server can write to its storage now."""
    storage = driver().storage
    try:
        storage.check_writable()
        healthy = True
    except StorageError as exc:
        current_app.logger.error("health check failed: %s", exc.message)
        healthy = False
    now = time.time()
    data = {"status": "healthy" if healthy else "unhealthy", "timestamp": now,
            "uptime": round(now - STARTED_AT, 3), "version": __version__,
            "storage": {"healthy": healthy, "provider": storage.provider}}
    if not healthy:
        return error_response(503, "Storage is not writable",
                              data=HealthSchema().dump(data))
    return {"data": data}
