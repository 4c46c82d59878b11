"""The services `create_app` builds once per app, and how any layer of the app finds them.

The API's views, the dashboard, the operator CLI and the metrics all reach the same
`TaskDriver` and `Authenticator` through `services()`, so none of them imports another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from .metrics import Metrics
    from .service import Authenticator, TaskDriver

EXTENSION = "taskdriver"


@dataclass(frozen=True)
class Services:
    """Everything the app built once in `create_app`, kept in `app.extensions`."""

    driver: TaskDriver
    authenticator: Authenticator
    metrics: Metrics


def services() -> Services:
    """The current app's services."""
    return current_app.extensions[EXTENSION]
