"""Protections in front of every route: per-IP rate limits and CORS."""

from __future__ import annotations

from flask import Flask, Response, g, request
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ..config import Settings
from . import limit_store  # noqa: F401 - registers the sqlite:// scheme with `limits`

EXPOSED_HEADERS = ["X-Correlation-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                   "X-RateLimit-Reset", "Retry-After"]
UNLIMITED_API_ENDPOINTS = {"api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                           "swagger_assets.static"}


def _exempt() -> bool:
    """Only `/api/*` counts; health, metrics, docs and CORS preflights stay reachable."""
    return (not request.path.startswith("/api/") or request.method == "OPTIONS"
            or request.endpoint in UNLIMITED_API_ENDPOINTS)


def _retry_after_on_429_only(response: Response) -> Response:
    """flask-limiter sets Retry-After on every limited response; it means "wait" only on 429
    (and where the error handler asked for it: a poll refused by a full worker)."""
    if response.status_code != 429:
        response.headers.pop("Retry-After", None)
    if "retry_after" in g:
        response.headers["Retry-After"] = g.retry_after
    return response


def init_app(app: Flask, settings: Settings) -> None:
    # Registered before the limiter so that it runs after the limiter adds its headers.
    app.after_request(_retry_after_on_429_only)
    # One budget per client IP across all of /api (application limits), not one per route.
    # ProxyFix (see http.py) has already put the real client address in remote_addr.
    Limiter(get_remote_address, app=app, enabled=settings.rate_limit_enabled,
            application_limits=[settings.rate_limit] if settings.rate_limit_enabled else [],
            application_limits_exempt_when=_exempt, headers_enabled=True,
            storage_uri=settings.resolved_rate_limit_storage, in_memory_fallback_enabled=True,
            key_prefix="taskdriver")
    CORS(app, origins=list(settings.cors_origins), expose_headers=EXPOSED_HEADERS,
         allow_headers=["Authorization", "Content-Type", "X-Correlation-ID",
                        "Idempotency-Key"])
