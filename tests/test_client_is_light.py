"""The client side (client, the `taskdriver` command, the MCP server) imports nothing of the
server: checked in a fresh interpreter, where nothing else has loaded those modules."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_SIDE = ("flask", "marshmallow", "psycopg", "taskdriver.storage", "taskdriver.service")
PROBE = """
import json, sys
import taskdriver.client, taskdriver.console, taskdriver.mcp, taskdriver.mcp.http
print(json.dumps(sorted(sys.modules)))
"""


def test_the_client_side_loads_no_server_module() -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                           timeout=120, check=True)
    loaded = json.loads(probe.stdout)
    assert "taskdriver.mcp.server" in loaded  # the probe did import the MCP package
    heavy = [name for name in loaded
             if any(name == root or name.startswith(root + ".") for root in SERVER_SIDE)]
    assert heavy == []
