"""Domain errors. Each class's docstring is its default message; none of them knows HTTP.

The single table in `taskdriver/error_status.py` maps each class to a status code.
"""

from __future__ import annotations


class TaskDriverError(Exception):
    """TaskDriver could not do that."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class NotFound(TaskDriverError):
    """Resource not found."""


class Conflict(TaskDriverError):
    """The request conflicts with the current state of the resource."""


class Unauthenticated(TaskDriverError):
    """Authentication required: send a valid bearer token."""


class Forbidden(TaskDriverError):
    """Access denied."""


class FieldError(TaskDriverError):
    """Validation failed."""

    def __init__(self, field: str, message: str, value: object = None) -> None:
        self.details = [{"field": field, "message": message, "value": value}]
        super().__init__(f"Validation failed: {field}: {message}")


class Busy(TaskDriverError):
    """This server process already holds as many waiting long polls as it may; retry in a
    moment, or raise TASKDRIVER_THREADS (or TASKDRIVER_WORKERS) for a larger fleet."""


class StorageError(TaskDriverError):
    """Storage is unavailable."""
