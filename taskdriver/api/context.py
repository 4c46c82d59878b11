"""What a view needs from the app: the service, the authenticator and the caller."""

from __future__ import annotations

from typing import Any

from flask import g, request

from ..extension import services
from ..models import Principal
from ..service import TaskDriver

__all__ = ["bearer_token", "driver", "ok", "page", "principal", "services"]


def driver() -> TaskDriver:
    return services().driver


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header, if there is one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def principal() -> Principal:
    """Authenticate the request (once) and return who is calling."""
    if "principal" not in g:
        g.principal = services().authenticator.authenticate(bearer_token())
        if g.principal.session is not None:
            g.log_agent = g.principal.session.agent_name
    return g.principal


def ok(data: Any, **extra: Any) -> dict[str, Any]:
    """A success envelope body for flask-smorest to dump."""
    return {"data": data, **extra}


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A list envelope body with its pagination block."""
    return {"data": items, "pagination": {"total": total, "limit": limit, "offset": offset}}
