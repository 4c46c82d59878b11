"""The operators' dashboard: server-rendered pages under /dashboard/, served by the same app.

A blueprint like the API's: its views call the service (never storage) as the operator, and
render Jinja templates. Assets (htmx for the live refresh, one stylesheet, a few lines that
keep "3 min ago" current) are served from `static/`, so it works with no internet.
`blueprint.py`: sign-in and CSRF; `views.py`: the pages; `actions.py`: what changes state
(`controls.py`: pause, resume, cancel); `formatting.py`: how times, leases and tasks read.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from ..config import Settings
from . import actions, controls, formatting, views  # noqa: F401  (routes and filters)
from .blueprint import blp

SECRET_FILE = "dashboard.secret"
DASHBOARD_PATH = "/dashboard"


class _SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie session, `Secure` whenever the request came over HTTPS, and
    only under /dashboard (the cookie's path): an API request gets Flask's null session,
    which opens and saves nothing, instead of a signer built and a cookie looked for."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(DASHBOARD_PATH):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        from flask import request

        return bool(isinstance(request, Request) and request.is_secure)


def _secret_key(settings: Settings) -> str:
    """TASKDRIVER_SECRET_KEY, else a key kept in the data dir (made once, mode 0600), so
    that every worker signs and checks the same cookies."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(os.urandom(32).hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path.read_text().strip()


def init_app(app: Flask) -> None:
    """Register the dashboard with its cookie settings."""
    settings: Settings = app.config["TASKDRIVER_SETTINGS"]
    app.secret_key = _secret_key(settings)
    app.config.update(SESSION_COOKIE_NAME="taskdriver_dashboard",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_PATH=DASHBOARD_PATH)
    app.session_interface = _SessionCookies()
    app.register_blueprint(blp)
