"""Per-request plumbing: correlation IDs, security headers, JSON body checks, auth first."""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import BadRequest
from werkzeug.middleware.proxy_fix import ProxyFix

from .. import access
from ..errors import FieldError
from ..logs import LOGGER_NAME, access_fields
from .context import principal
from .edge import UNLIMITED_API_ENDPOINTS
from .operator_only import operator_action

access_log = logging.getLogger(f"{LOGGER_NAME}.access")

CORRELATION_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
PUBLIC_API_ENDPOINTS = {"auth.login", *UNLIMITED_API_ENDPOINTS}
BODY_METHODS = {"POST", "PUT", "PATCH"}
MAX_BODY_DEPTH = 64
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-XSS-Protection": "1; mode=block",
}
HSTS = "max-age=31536000; includeSubDomains"


def _identify_request() -> None:
    g.started_at = time.perf_counter()
    sent = request.headers.get("X-Correlation-ID", "")
    g.correlation_id = sent if CORRELATION_ID.match(sent) else str(uuid.uuid4())


def _check_request() -> None:
    if request.url_rule is None or request.method == "OPTIONS":
        return  # unknown route or method (the 404/405 handler answers), or a CORS preflight
    if request.path.startswith("/api/") and request.endpoint not in PUBLIC_API_ENDPOINTS:
        caller = principal()  # 401 before any validation of the request itself
        view = current_app.view_functions.get(request.endpoint or "")
        action = operator_action(view, request.method)
        if action is not None:
            access.require_admin(caller, action)  # 403 before it too (operator_only.py)
    if request.method in BODY_METHODS and request.path.startswith("/api/"):
        _check_json_body()  # the dashboard's forms are not JSON


def _check_json_body() -> None:
    """Refuse bodies webargs would silently ignore or misread (400) or no backend can
    store (422), before any view sees them."""
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH this raises 413
    if not raw.strip():
        return
    if not request.is_json:
        raise BadRequest("Send the body as JSON with Content-Type: application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # deeper than the parser can go; far past MAX_BODY_DEPTH anyway
        raise FieldError("body", f"nesting is limited to {MAX_BODY_DEPTH} levels") from None
    if body is None:
        raise BadRequest("Malformed JSON body")
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    problem = unstorable(body)
    if problem is not None:
        path, message = problem
        raise FieldError(".".join(path) or "body", message)


def unstorable(value: Any, depth: int = 0) -> tuple[list[str], str] | None:
    """Where a parsed body holds what no backend can store faithfully (the path of keys
    and indexes to it), and why.

    Python's JSON parser accepts lone surrogates, NUL characters, NaN and integers of any
    size; the journal's encoder and PostgreSQL's jsonb refuse some of them and would
    silently change others, so they are refused up front with a 422 naming the field.
    Every value of every request body passes through here (7,000 in a 1,000-task bulk
    create), so the path is only built on the way back from a problem.
    """
    if depth > MAX_BODY_DEPTH:
        return [], f"nesting is limited to {MAX_BODY_DEPTH} levels"
    kind = type(value)
    if kind is str:
        return _unstorable_text(value)
    if kind is dict:
        for key, item in value.items():
            key_problem = _unstorable_text(key)  # a JSON object's keys are text
            if key_problem is not None:
                return key_problem
            problem = unstorable(item, depth + 1)
            if problem is not None:
                problem[0].insert(0, key)
                return problem
    elif kind is list:
        for index, item in enumerate(value):
            problem = unstorable(item, depth + 1)
            if problem is not None:
                problem[0].insert(0, str(index))
                return problem
    elif kind is int:
        if not -(2**63) <= value < 2**64:
            return [], "integers must fit in 64 bits"
    elif kind is float and not math.isfinite(value):
        return [], "numbers must be finite"
    return None


def _unstorable_text(text: str) -> tuple[list[str], str] | None:
    if "\x00" in text:
        return [], "text may not contain NUL characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return [], "text must be valid Unicode (no lone surrogates)"
    return None


def _finish_response(response: Response) -> Response:
    response.headers["X-Correlation-ID"] = g.get("correlation_id") or str(uuid.uuid4())
    response.headers.update(SECURITY_HEADERS)
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    access_log.info("request", extra={"fields": access_fields(response.status_code)})
    return response


def init_identification(app: Flask) -> None:
    """Register first, so that even a request refused by the rate limit has an ID."""
    app.before_request(_identify_request)


def init_app(app: Flask) -> None:
    """Register after the rate limiter: a flood of bad tokens is limited before auth."""
    hops = app.config["TASKDRIVER_SETTINGS"].trusted_proxies
    if hops:
        # Client IP, scheme and host from X-Forwarded-* of exactly that many proxies; more
        # would let any client forge its address past the rate limit.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore
                                x_host=hops, x_port=hops, x_prefix=hops)
    app.before_request(_check_request)
    app.after_request(_finish_response)
