"""The one place exceptions become the error envelope.

`{"success": false, "error", "timestamp", "correlationId"[, "validationDetails"]}` for every
status >= 400 on every route: domain errors by the table in `error_status.py`, HTTP errors
raised by Flask, webargs and flask-limiter by their code, and anything unexpected as a 500
that shows no internals (the stack trace goes to the log only).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, g, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from ..error_status import status_of
from ..errors import Busy, FieldError, TaskDriverError
from ..times import rfc3339

BUSY_RETRY_AFTER_SECONDS = 2

MESSAGE_OF_STATUS = {
    400: "Bad request",
    401: "Authentication required",
    404: "Route not found",
    405: "Method not allowed",
    413: "Request body too large",
    429: "Too many requests",
    500: "Internal server error",
}

log = logging.getLogger("taskdriver.errors")


def error_response(status: int, message: str, details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None, data: Any = None) -> Response:
    """Build the error envelope (with `data` when a failure still has a body, as health)."""
    body: dict[str, Any] = {"success": False, "error": message,
                            "timestamp": rfc3339(time.time()),
                            "correlationId": g.get("correlation_id", "")}
    if details is not None:
        body["validationDetails"] = details
    if data is not None:
        body["data"] = data
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _walk(messages: Any, path: list[str]) -> Iterator[tuple[list[str], str]]:
    if isinstance(messages, dict):
        for key, inner in messages.items():
            yield from _walk(inner, path if key == "_schema" else [*path, str(key)])
    elif isinstance(messages, list):
        for item in messages:
            yield from _walk(item, path)
    else:
        yield path, str(messages)


def _value_at(source: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(source, dict):
            source = source.get(part)
        elif isinstance(source, list) and part.isdigit() and int(part) < len(source):
            source = source[int(part)]
        else:
            return None
    return source


def validation_details(messages: Any, source: Any) -> list[dict[str, Any]]:
    """Flatten marshmallow messages into `[{field, message, value}]` (dotted field paths)."""
    return [{"field": ".".join(path) or "body", "message": message,
             "value": _value_at(source, path)}
            for path, message in _walk(messages, [])]


def validation_message(details: list[dict[str, Any]]) -> str:
    """`Validation failed: <field>: <message>[; …]`, the one wording of every 422."""
    return "Validation failed: " + "; ".join(f"{d['field']}: {d['message']}" for d in details)


def validation_response(details: list[dict[str, Any]]) -> Response:
    return error_response(422, validation_message(details), details)


def _request_source(location: str) -> Any:
    if location == "query":
        return request.args.to_dict()
    return request.get_json(silent=True)


def handle_http_exception(error: HTTPException) -> Response:
    data = getattr(error, "data", None) or {}
    status = error.code or 500
    if status == 422 and "messages" in data:  # webargs: {location: {field: [message]}}
        details: list[dict[str, Any]] = []
        for location, messages in data["messages"].items():
            details += validation_details(messages, _request_source(location))
        return validation_response(details)
    if status == 400 and "messages" in data:
        return error_response(400, "Malformed JSON body")
    headers = dict(data.get("headers") or {})
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    custom = error.description if error.description != type(error).description else None
    message = custom or MESSAGE_OF_STATUS.get(status) or error.name
    if status == 429:  # flask-limiter adds Retry-After and X-RateLimit-* afterwards
        message = (f"Too many requests: the limit is {error.description} per client "
                   f"address (the server's TASKDRIVER_RATE_LIMIT; `off` disables it)")
    return error_response(status, message, headers=headers)


def handle_domain_error(error: TaskDriverError) -> Response:
    status = status_of(error)
    if isinstance(error, FieldError):
        return validation_response(error.details)
    if isinstance(error, Busy):
        g.retry_after = str(BUSY_RETRY_AFTER_SECONDS)  # kept by the edge's header filter
    if status == 503:
        log.error("storage failure: %s", error.message)
    return error_response(status, error.message)


def handle_validation_error(error: ValidationError) -> Response:
    return validation_response(validation_details(error.messages,
                                                  request.get_json(silent=True)))


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, MESSAGE_OF_STATUS[500])


def init_app(app: Flask) -> None:
    """Register the handlers; they cover every route, unknown ones included."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(TaskDriverError, handle_domain_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(Exception, handle_unexpected)
