"""TaskDriver: a self-hosted HTTP service that leases work to fleets of LLM agents.

The package has two halves: the server (`create_app` and everything it builds) and the
client side (`taskdriver.client`, the `taskdriver` command), which speaks HTTP only. This
module imports nothing of the server at import time, so `import taskdriver.client` stays
light.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None,
               clock: Callable[[], float] = time.time) -> Flask:
    """Build an app: settings -> logs -> storage -> services -> metrics -> HTTP -> CLI.

    `config` holds TASKDRIVER_* overrides on top of the environment; `clock` lets tests move
    time forward instead of sleeping through leases.
    """
    from flask import Flask

    from . import api, dashboard, logs, server_cli
    from .api.json_provider import OrjsonProvider
    from .config import Settings
    from .extension import EXTENSION, Services
    from .metrics import Metrics
    from .service import TaskDriver
    from .storage import open_storage

    settings = Settings.from_env(config)
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["TASKDRIVER_SETTINGS"] = settings
    app.json.sort_keys = False
    logs.configure()
    storage = open_storage(settings.resolved_storage_url, settings.fsync)
    try:
        driver = TaskDriver(storage, settings, clock)
        # At start, not on a first request: the operator learns the token's path at once.
        driver.sessions.bootstrap_admin_token()
        metrics = Metrics(app, driver, driver.sessions)
        driver.events = metrics.events
        app.extensions[EXTENSION] = Services(driver, driver.sessions, metrics)
        api.init_app(app)
        dashboard.init_app(app)
        server_cli.init_app(app)
    except BaseException:
        storage.close()  # a refused start leaves no file or connection open
        raise
    return app
