"""Who may do what: operators everything, agents only inside their project and as themselves."""

from __future__ import annotations

from .errors import FieldError, Forbidden
from .models import Principal


def require_admin(principal: Principal, action: str) -> None:
    """Refuse agents an operator-only action (creating, changing or deleting projects...)."""
    if not principal.is_admin:
        raise Forbidden(f"Only operators may {action}")


def require_project(principal: Principal, project_id: str) -> None:
    """Refuse an agent anything in a project other than the one it logged in to."""
    if principal.session is not None and principal.session.project_id != project_id:
        raise Forbidden("This session belongs to another project")


def acting_agent(principal: Principal, agent_name: str | None,
                 fallback: str | None = None) -> str:
    """The agent name a queue call acts as: the given one, else the session's.

    An agent may only act as itself. An operator may act as any agent; without a name it
    acts as `fallback` (the task's current holder), so operators can settle stuck tasks.
    """
    session = principal.session
    if session is not None:
        if agent_name is not None and agent_name != session.agent_name:
            raise Forbidden(f"This session may only act as agent {session.agent_name}")
        return session.agent_name
    name = agent_name or fallback
    if name is None:
        raise FieldError("agentName", "agentName is required with an operator token")
    return name
