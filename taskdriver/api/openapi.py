"""The OpenAPI document as generated clients need it: the reference's names, operation ids.

Flask rules name path parameters in Python's style (`<uuid:project_id>`); the API reference
names them `projectId`. flask-smorest's Flask plugin is taught to write the reference's names
and to give every operation an `operationId`, derived from its view:

* a view function: its name in camelCase (`complete_task` -> `completeTask`);
* a MethodView: verb and noun from its class, `TasksView.get` -> `listTasks`,
  `TasksView.post` -> `createTask`, `TaskView.get` -> `getTask`, `put` -> `update…`,
  `delete` -> `delete…`.
"""

from __future__ import annotations

import re
from typing import Any

from flask_smorest.spec.plugins import FlaskPlugin
from werkzeug.routing import Rule

SNAKE_WORD = re.compile(r"_([a-z0-9])")
CLASS_WORD = re.compile(r"(?<!^)(?=[A-Z])")
PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)\}")
VERBS = {"post": "create", "put": "update", "delete": "delete", "patch": "update"}


def camel(name: str) -> str:
    """`project_id` -> `projectId`."""
    return SNAKE_WORD.sub(lambda match: match[1].upper(), name)


def operation_id(endpoint: str, method: str) -> str:
    """The operationId of one method of a view (see the module's docstring)."""
    view = endpoint.rsplit(".", 1)[-1]
    if not view.endswith("View"):
        return camel(view)
    noun = view.removesuffix("View")
    many = noun.endswith("s")
    if method == "get":
        return ("list" if many else "get") + noun
    return VERBS[method] + (noun.removesuffix("s") if many else noun)


class ReferenceNamesPlugin(FlaskPlugin):
    """flask-smorest's Flask plugin, writing the reference's parameter names and ids."""

    @staticmethod
    def flaskpath2openapi(path: str) -> str:
        converted = FlaskPlugin.flaskpath2openapi(path)
        return PLACEHOLDER.sub(lambda match: "{" + camel(match[1]) + "}", converted)

    def rule_to_params(self, rule: Rule) -> list[dict[str, Any]]:
        params = super().rule_to_params(rule)
        for param in params:
            param["name"] = camel(param["name"])
        return params

    def path_helper(self, rule: Rule, operations: dict[str, Any], parameters: list[Any],
                    **kwargs: Any) -> str:
        for method, operation in operations.items():
            operation.setdefault("operationId", operation_id(rule.endpoint, method))
        return super().path_helper(rule=rule, operations=operations, parameters=parameters,
                                   **kwargs)
