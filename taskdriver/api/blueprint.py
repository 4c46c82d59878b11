"""flask-smorest's Blueprint, doing no per-request work that can be done once.

Out of the box, flask-smorest hands webargs the schema class, which builds a new schema
instance (deep-copying every field) for each request, and webargs parses the JSON body a
second time after `http.py` has parsed and checked it. Both are per-request costs with no
purpose: schemas are reusable, and the body Flask parsed is cached on the request. Response
schemas are dumped by a compiled function (`dumping.py`) with marshmallow's exact output,
as of the service's clock read when the view starts (`responses.dumping_as_of`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import flask
import flask_smorest
from marshmallow import Schema
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request

from .context import driver
from .dumping import use_compiled_dump
from .responses import dumping_as_of


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
    """A flask-smorest Blueprint whose schemas are built once, at import, and whose
    responses are dumped by compiled functions."""

    ARGUMENTS_PARSER = ParsedBodyParser()

    def arguments(self, schema: type[Schema] | Schema, *args: Any, **kwargs: Any) -> Any:
        return super().arguments(schema() if isinstance(schema, type) else schema,
                                 *args, **kwargs)

    def response(self, status_code: int, schema: type[Schema] | Schema | None = None,
                 **kwargs: Any) -> Any:
        """flask-smorest's response, dumping through the schema's compiled dump, as of now.

        flask-smorest documents the schema and calls its `dump` with the view's result;
        both run inside `dumping_as_of` the service's clock, read once before the view, so
        every task of an answer is called due or not by one moment.
        """
        if isinstance(schema, type):
            schema = schema()
        if schema is not None:
            use_compiled_dump(schema)
        document_and_dump = super().response(status_code, schema, **kwargs)

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            dumped = document_and_dump(view)

            @wraps(dumped)
            def as_of_now(*args: Any, **kwargs: Any) -> Any:
                with dumping_as_of(driver().now()):
                    return dumped(*args, **kwargs)

            return as_of_now

        return decorator
