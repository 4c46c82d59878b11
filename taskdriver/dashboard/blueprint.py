"""The dashboard's blueprint, sign-in and CSRF: what every page and action stands on.

Sign-in takes an operator token once and keeps only its hash in a signed, HttpOnly,
SameSite=Strict cookie; every page checks that hash is still an operator token's. Every form
that changes state carries the session's `csrf_token` (a few lines here rather than a form
library: there is one hidden field to check).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, session, url_for

from ..error_status import status_of
from ..errors import TaskDriverError
from ..extension import services
from ..models import TaskStatus

blp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
                static_folder="static", static_url_path="/static")

SESSION_KEY = "operator"
CSRF_KEY = "csrf_token"

View = Callable[..., Any]


def signed_in(view: View) -> View:
    """Pages need a live operator session; anything else goes to the sign-in page."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token_hash = session.get(SESSION_KEY)
        if not token_hash or not services().authenticator.is_operator_token_hash(token_hash):
            session.clear()
            return redirect(url_for("dashboard.login"))
        return view(*args, **kwargs)
    return wrapper


def changes_state(view: View) -> View:
    """A POST must carry the session's CSRF token in a `csrf_token` field (else 400)."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sent = request.form.get(CSRF_KEY, "")
        expected = session.get(CSRF_KEY, "")
        if not expected or not hmac.compare_digest(sent, expected):
            abort(Response(render_template("dashboard/error.html", status=400,
                                           message="This form has expired or did not come "
                                                   "from the dashboard; go back, reload the "
                                                   "page and try again."), 400))
        return view(*args, **kwargs)
    return signed_in(wrapper)


@blp.app_template_global()
def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    return str(session[CSRF_KEY])


@blp.context_processor
def _names() -> dict[str, Any]:
    return {"Status": TaskStatus}


@blp.errorhandler(TaskDriverError)
def domain_error(error: TaskDriverError) -> tuple[str, int]:
    """A refused call reads as a page with the service's message and its HTTP status."""
    status = status_of(error)
    return render_template("dashboard/error.html", status=status, message=error.message), status


@blp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in form; an operator token starts a session."""
    if request.method == "GET":
        return render_template("dashboard/login.html", message=None)
    token = request.form.get("token", "").strip()
    token_hash = services().authenticator.operator_token_hash(token) if token else None
    if token_hash is None:
        message = ("That is not an operator token (agent tokens cannot sign in here)."
                   if token else "Paste an operator token.")
        return render_template("dashboard/login.html", message=message), 401
    session.clear()
    session[SESSION_KEY] = token_hash
    csrf_token()
    return redirect(url_for("dashboard.overview"))


@blp.route("/logout", methods=["POST"])
@changes_state
def logout() -> Any:
    """End the session."""
    session.clear()
    return redirect(url_for("dashboard.login"))
