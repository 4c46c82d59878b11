"""The one table of HTTP statuses for domain errors, below every face that answers HTTP.

The API's error envelope (`api/errors.py`) and the dashboard's error page both take a
domain error's status from here; `errors.py` itself stays free of HTTP.
"""

from __future__ import annotations

from .errors import (
    Busy,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    StorageError,
    TaskDriverError,
    Unauthenticated,
)

STATUS_OF: dict[type[TaskDriverError], int] = {
    FieldError: 422,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    StorageError: 503,
    Busy: 503,
}
UNEXPECTED_STATUS = 500


def status_of(error: TaskDriverError) -> int:
    """The HTTP status of a domain error, from the one table."""
    return next((code for cls, code in STATUS_OF.items() if isinstance(error, cls)),
                UNEXPECTED_STATUS)
