"""The HTTP layer: flask-smorest Api, blueprints, error envelope and request plumbing."""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle
from flask import Blueprint, Flask
from flask_smorest import Api

from .. import __version__
from . import auth, controls, edge, errors, http, ops, projects, queue, task_types, tasks
from .envelope import ErrorSchema
from .openapi import ReferenceNamesPlugin

BLUEPRINTS = (auth.blp, projects.blp, task_types.blp, tasks.blp, queue.blp, controls.blp,
              ops.blp)

OPENAPI_CONFIG: dict[str, Any] = {
    "API_TITLE": "TaskDriver",
    "API_VERSION": __version__,
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    # Swagger UI's assets come from the swagger-ui-bundle package and are served by
    # TaskDriver itself, so the docs work on a machine with no internet.
    "OPENAPI_SWAGGER_UI_URL": "/api/docs/assets/",
    "API_SPEC_OPTIONS": {
        "components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "An operator token or an agent session token"}}},
        "security": [{"bearerAuth": []}],
        "info": {"description": "Hands out work to fleets of LLM agents through leases."},
    },
}


class TaskDriverApi(Api):
    """flask-smorest's Api with TaskDriver's error envelope instead of its own."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        errors.init_app(self._app)


def init_app(app: Flask) -> Api:
    """Register every route, the error handlers and the per-request hooks."""
    for key, value in OPENAPI_CONFIG.items():
        app.config.setdefault(key, value)
    http.init_identification(app)
    edge.init_app(app, app.config["TASKDRIVER_SETTINGS"])
    api = TaskDriverApi(app, spec_kwargs={"flask_plugin": ReferenceNamesPlugin()})
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(Blueprint("swagger_assets", __name__,
                                     static_folder=swagger_ui_bundle.swagger_ui_path,
                                     static_url_path="/api/docs/assets"))
    http.init_app(app)
    return api
