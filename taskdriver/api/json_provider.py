"""Flask's JSON provider, writing answers with orjson.

A bulk answer carries the 1,000 tasks it created; the standard library's encoder spent
more time on that than on creating them. orjson writes the same JSON (compact, keys in the
order given, non-string keys as strings, dates and other objects through Flask's own
`default`) several times faster, as UTF-8 rather than \\u-escapes. It writes integers
within 64 bits, as every stored value is (`http.py`) and every query number (`schemas.py`)
must be. Reading stays with
Flask's parser: it accepts lone surrogates, NaN and huge integers, which `http.py` then
refuses with a 422 naming the field instead of a bare "malformed JSON".
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider


class OrjsonProvider(DefaultJSONProvider):
    """DefaultJSONProvider whose `dumps` (and so `jsonify` and every API answer) is orjson."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        option = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
        if kwargs.get("sort_keys", self.sort_keys):
            option |= orjson.OPT_SORT_KEYS
        if kwargs.get("indent"):
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(obj, default=kwargs.get("default", self.default),
                            option=option).decode()
