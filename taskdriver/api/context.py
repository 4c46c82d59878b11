"""What a view needs from the app: the service, the authenticator and the caller."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from flask import g, request

from ..errors import FieldError
from ..extension import services
from ..models import Idempotency, Principal
from ..service import TaskDriver

__all__ = ["bearer_token", "driver", "idempotency", "ok", "page", "principal", "services"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


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


def idempotency() -> Idempotency | None:
    """The request's `Idempotency-Key` with a fingerprint of what it asks, if one was sent.

    The fingerprint covers method, path, the calling identity (the operator, or an agent by
    project and name, so a repeat after a re-login still matches) and the body as parsed
    JSON with sorted keys (so spacing and key order do not matter).
    """
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise FieldError(IDEMPOTENCY_HEADER, "must be 1-255 visible ASCII characters", key)
    caller = principal()
    who = ("agent", caller.session.project_id, caller.session.agent_name) \
        if caller.session is not None else ("operator",)
    asked = orjson.dumps([request.method, request.path, who, request.get_json(silent=True)],
                         option=orjson.OPT_SORT_KEYS)
    return Idempotency(key, hashlib.sha256(asked).hexdigest())


def ok(data: Any, **extra: Any) -> dict[str, Any]:
    """A success envelope body for flask-smorest to dump."""
    return {"data": data, **extra}


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A list envelope body with its pagination block."""
    return {"data": items, "pagination": {"total": total, "limit": limit, "offset": offset}}
