"""The project rules the operator CLI (`server_cli.py`) validates its options with.

The schemas live by direction: `fields.py`, `requests.py`, `responses.py` and
`envelope.py`. This name stays only because `server_cli.py` imports it; issue 20, item 5
moves the CLI off the HTTP layer, and then this module goes.
"""

from __future__ import annotations

from .requests import ProjectCreateArgs

__all__ = ["ProjectCreateArgs"]
