"""Agent login and logout, and the caller's own session."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from ..models import Principal
from .blueprint import Blueprint
from .context import ok, principal, services
from .envelope import envelope
from .requests import ExtendSessionArgs, LoginArgs
from .responses import LoginSchema, LogoutSchema, SessionSchema

blp = Blueprint("auth", __name__, url_prefix="/api/auth",
                description="Agent sessions and bearer tokens")


def _session_body(caller: Principal) -> dict[str, Any]:
    session = caller.session
    if session is None:
        return {"session_id": None, "role": caller.role.value}
    return {"session_id": session.id, "role": caller.role.value,
            "agent_name": session.agent_name, "project_id": session.project_id,
            "created_at": session.created_at, "expires_at": session.expires_at,
            "last_activity": session.last_activity}


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginArgs)
@blp.response(200, envelope(LoginSchema))
@blp.doc(security=[])
def login(args: dict[str, Any]) -> dict[str, Any]:
    """Open an agent session in one project (by project id or name)."""
    session, token, resumed = services().authenticator.login(
        args["agent_name"], args["project_id"], args.get("agent_key"),
        args["resume_existing"], args["allow_multiple_sessions"])
    return ok({"session_id": session.id, "token": token, "expires_at": session.expires_at,
               "agent_name": session.agent_name, "project_id": session.project_id,
               "resumed": resumed})


@blp.route("/logout", methods=["POST"])
@blp.response(200, envelope(LogoutSchema))
def logout() -> dict[str, Any]:
    """End the caller's session; its token fails from now on."""
    services().authenticator.logout(principal())
    return ok({"logged_out": True})


@blp.route("/session")
class SessionView(MethodView):
    @blp.response(200, envelope(SessionSchema))
    def get(self) -> dict[str, Any]:
        """Describe the caller: operator (`role: admin`) or agent session."""
        return ok(_session_body(principal()))

    @blp.arguments(ExtendSessionArgs)
    @blp.response(200, envelope(SessionSchema))
    def put(self, args: dict[str, Any]) -> dict[str, Any]:
        """Extend the caller's session by `extendBy` seconds."""
        caller = principal()
        session = services().authenticator.extend(caller, args["extend_by"])
        return ok(_session_body(Principal(caller.role, session)))
