"""The benchmark's agents' HTTP client: as little CPU per request as a client can spend."""

from __future__ import annotations

import http.client
import json
from typing import Any


class Client:
    """A minimal HTTP/1.1 JSON client (http.client): the load generator shares the machine
    with the server, so it should spend as little CPU per request as possible. Like a real
    agent's client (requests.Session, taskdriver.client) it keeps its connection open while
    the server allows (threaded workers do; sync workers close after each answer)."""

    def __init__(self, url: str) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.headers = {"Content-Type": "application/json"}
        self.connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, int(self.port),
                                                         timeout=60)
        try:
            self.connection.request("POST", path, json.dumps(body), self.headers)
            response = self.connection.getresponse()
            status, answer = response.status, json.loads(response.read())
        except (http.client.HTTPException, OSError):
            self.connection.close()  # the server closed it meanwhile: once more, afresh
            self.connection = None
            return self.post(path, body)
        if response.will_close:
            self.connection.close()
            self.connection = None
        return status, answer
