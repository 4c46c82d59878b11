"""flask-smorest's Blueprint, with argument parsing that does no work twice per request.

Out of the box, flask-smorest hands webargs the schema class, which builds a new schema
instance (deep-copying every field) for each request, and webargs parses the JSON body a
second time after `http.py` has parsed and checked it. Both are per-request costs with no
purpose: schemas are reusable, and the body Flask parsed is cached on the request.
"""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from marshmallow import Schema
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request


class ParsedBodyParser(FlaskParser):
    """webargs' Flask parser, reading the body Flask already parsed.

    Every JSON body of an API route was parsed, and refused unless it is a JSON object,
    by `http.py` before any view runs, so here `None` can only mean an empty body.
    """

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return missing
        body = req.get_json(silent=True)
        return missing if body is None else body


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest Blueprint whose argument schemas are built once, at import."""

    ARGUMENTS_PARSER = ParsedBodyParser()

    def arguments(self, schema: type[Schema] | Schema, *args: Any, **kwargs: Any) -> Any:
        return super().arguments(schema() if isinstance(schema, type) else schema,
                                 *args, **kwargs)
