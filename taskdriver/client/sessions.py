"""An agent's session: read it, extend it, log out (logging in is the transport's)."""

from __future__ import annotations

from typing import Any, cast

from .transport import Transport


class SessionEndpoints(Transport):
    """The `/api/auth/session` and logout endpoints."""

    def logout(self) -> None:
        """End the agent's session; a long poll it has waiting is answered 401 within about
        a second and leases nothing, and this client opens no new session afterwards."""
        self.logged_out = True
        self.call("POST", "/api/auth/logout")
        self.token = None

    def get_session(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("GET", "/api/auth/session", safe=True))

    def extend_session(self, seconds: int) -> dict[str, Any]:
        return cast(dict[str, Any], self._data("PUT", "/api/auth/session",
                                               json={"extendBy": seconds}))
