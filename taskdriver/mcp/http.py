"""The MCP server over streamable HTTP, with access control of its own.

Whoever reaches the port acts with the identity the server was started with (often an
operator's token), so the endpoint is guarded three ways: a bearer token on every request
(the operator's own, or one given with `--auth-token`), `Host` and `Origin` checked against
allow-lists (the MCP specification's guard against DNS rebinding: a web page whose name
resolves to 127.0.0.1 must not reach a local server), and no bind to an address other
machines can reach unless a token guards it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

PATH = "/mcp"
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
WILDCARDS = {"0.0.0.0", "::", ""}


class UnsafeBind(ValueError):
    """A bind the guard cannot protect (the message says what to add)."""


@dataclass(frozen=True)
class Guard:
    """Who may call: the token, and the Host and Origin values a request may carry."""

    token: str | None
    hosts: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)

    def transport_security(self) -> TransportSecuritySettings:
        """The SDK's Host/Origin check with these allow-lists."""
        return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                         allowed_hosts=self.hosts,
                                         allowed_origins=self.origins)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def guard_for(bind: str, token: str | None, hosts: tuple[str, ...] = (),
              origins: tuple[str, ...] = ()) -> Guard:
    """The guard for serving on `bind`; refuses a bind that would be open to others.

    Loopback names are always allowed; a specific address adds itself; a wildcard bind
    (0.0.0.0) needs the names clients will use, as the server cannot guess them."""
    if not is_loopback(bind) and not token:
        raise UnsafeBind(f"refusing to serve MCP on {bind} without a token: give "
                         "--auth-token (or TASKDRIVER_MCP_TOKEN), or bind 127.0.0.1")
    if bind in WILDCARDS and not hosts:
        raise UnsafeBind(f"--host {bind or '*'} needs --allow-host NAME for each host name "
                         "clients use to reach this server")
    own = [] if is_loopback(bind) or bind in WILDCARDS else [_host_pattern(bind)]
    return Guard(token, [*LOOPBACK_HOSTS, *own, *(_host_pattern(h) for h in hosts)],
                 [*LOOPBACK_ORIGINS, *origins])


def _host_pattern(host: str) -> str:
    """A bare name or address allows any port; `name:port` (`[v6]:port`) that port only."""
    if host.startswith("["):
        return host if "]:" in host else f"{host}:*"
    if host.count(":") > 1:  # a bare IPv6 address
        return f"[{host}]:*"
    return host if ":" in host else f"{host}:*"


class BearerGate:
    """ASGI middleware: an HTTP request without `Authorization: Bearer <token>` gets 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "a bearer token is required (Authorization: Bearer "
                                    "<token>)"}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _authorized(self, scope: Scope) -> bool:
        given = dict(scope["headers"]).get(b"authorization", b"")
        return hmac.compare_digest(given, self.expected)


def http_app(server: Server[Any], bind: str, guard: Guard) -> ASGIApp:
    """The streamable-HTTP ASGI app at `/mcp`, behind the guard."""
    app: ASGIApp = server.streamable_http_app(streamable_http_path=PATH, host=bind,
                                              transport_security=guard.transport_security())
    return BearerGate(app, guard.token) if guard.token else app


def serve_http(server: Server[Any], bind: str, port: int, guard: Guard) -> None:
    """Serve until interrupted."""
    import uvicorn

    uvicorn.run(http_app(server, bind, guard), host=bind, port=port, log_level="warning")
