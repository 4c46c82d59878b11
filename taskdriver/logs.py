"""Structured logs: one JSON object per line, with the request's correlation ID.

Tokens never reach a log: nothing here reads headers or bodies, and the access line carries
only the method, path, status, duration and the ids the route names.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from flask import g, has_request_context, request

from .times import rfc3339

LOGGER_NAME = "taskdriver"


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line; `extra={"fields": {...}}` adds keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"timestamp": rfc3339(record.created),
                                 "level": record.levelname.lower(),
                                 "logger": record.name, "message": record.getMessage()}
        if has_request_context():
            entry["correlationId"] = g.get("correlation_id")
            entry["method"] = request.method
            entry["path"] = request.path
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure() -> logging.Logger:
    """Send the `taskdriver` loggers to stderr as JSON lines (once per process)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(h, "taskdriver_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.taskdriver_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def access_fields(status: int) -> dict[str, Any]:
    """What the access line says about the current request, beyond method and path."""
    view_args = request.view_args or {}
    fields: dict[str, Any] = {
        "status": status,
        "duration": round((time.perf_counter() - g.get("started_at", time.perf_counter()))
                          * 1000, 3),
    }
    for name, key in (("project", "project_id"), ("task", "task_id"),
                      ("taskType", "type_id"), ("batch", "batch_id")):
        if key in view_args:
            fields[name] = str(view_args[key])
    agent = view_args.get("agent_name") or g.get("log_agent")
    if agent:
        fields["agent"] = agent
    return fields
