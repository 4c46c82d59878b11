"""The client's one exception type, carrying what the server said."""

from __future__ import annotations

from typing import Any

SESSION_REPLACED_MARK = "newer login"


TASK_CANCELLED_MARK = "Task was cancelled"  # how a holder's 409 after a cancel begins


class ApiError(Exception):
    """A refused or failed call: the HTTP status (0 when no answer came), the server's error
    message, its correlationId and, for 422, the validation details."""

    def __init__(self, status: int, message: str, correlation_id: str | None = None,
                 validation_details: list[dict[str, Any]] | None = None) -> None:
        self.status = status
        self.message = message
        self.correlation_id = correlation_id
        self.validation_details = validation_details or []
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for a person: status, message and correlation id."""
        status = f"HTTP {self.status}" if self.status else "no answer"
        where = f" (correlationId {self.correlation_id})" if self.correlation_id else ""
        return f"{status}: {self.message}{where}"

    @property
    def session_replaced(self) -> bool:
        """Whether a newer login under the same agent name ended this session."""
        return self.status == 401 and SESSION_REPLACED_MARK in self.message

    @property
    def task_cancelled(self) -> bool:
        """Whether an operator cancelled the task this call reported on."""
        return self.status == 409 and self.message.startswith(TASK_CANCELLED_MARK)


class ServerUnreachable(ApiError):
    """No answer: the server is down, unreachable or too slow."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"cannot reach the TaskDriver server at {url}: {reason}")
