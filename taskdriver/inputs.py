"""What callers ask of the service, as typed records, and the input rules every door shares.

The API's request schemas and the operator's `flask taskdriver` commands take their name
patterns and limits from here, so a value one door refuses the other refuses too. Nothing
here knows HTTP or marshmallow: a broken rule is a `FieldError`, which the API turns into
its `validationDetails` and the operator CLI into one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from .errors import FieldError
from .models import (
    DependencyFailure,
    DuplicateHandling,
    ProjectConfig,
    ProjectStatus,
    RateLimit,
    RetryBackoff,
)

NAME_MAX_LENGTH = 100
TEXT_LIMIT = 1_000_000  # characters of a description, instructions or a variable's value


@dataclass(frozen=True, slots=True)
class NameRule:
    """A pattern a name must match whole (`$` alone would let a trailing newline by), and
    what to say when it does not."""

    pattern: str
    message: str

    def check(self, field: str, value: str) -> None:
        """Refuse `value` for `field` unless it is 1-100 characters matching the pattern."""
        if not 1 <= len(value) <= NAME_MAX_LENGTH:
            raise FieldError(field, f"Length must be between 1 and {NAME_MAX_LENGTH}.", value)
        if re.fullmatch(self.pattern, value) is None:
            raise FieldError(field, self.message, value)


PROJECT_NAME = NameRule(
    r"^[A-Za-z0-9_-]+$",
    "Project name can only contain letters, numbers, hyphens, and underscores")
AGENT_NAME = NameRule(
    r"^[A-Za-z0-9_.@:-]{1,100}$",
    "Agent name must be 1-100 letters, numbers or _ . @ : -")
TASK_TYPE_NAME = NameRule(
    r"^[A-Za-z0-9_.:-]+$",
    "Task type name can only contain letters, numbers and _ . : -")


def check_text(field: str, value: str, limit: int = TEXT_LIMIT) -> None:
    """Refuse a free text longer than `limit` characters."""
    if len(value) > limit:
        raise FieldError(field, f"Longer than maximum length {limit}.", value)


KEEP_ARCHIVE_FOREVER = float("inf")
"""`deleteArchivedAfterDays: null` as a change (None there means "not given")."""


@dataclass(frozen=True, slots=True)
class ConfigChanges:
    """Project settings to set; None keeps the current (or default) value."""

    default_max_retries: int | None = None
    default_lease_duration_minutes: float | None = None
    reaper_interval_minutes: float | None = None
    archive_after_days: float | None = None
    delete_archived_after_days: float | None = None  # KEEP_ARCHIVE_FOREVER: set it to null

    def applied_to(self, config: ProjectConfig) -> ProjectConfig:
        """`config` with the given settings changed, the others kept."""
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        changed = {k: v for k, v in given.items() if v is not None}
        if changed.get("delete_archived_after_days") == KEEP_ARCHIVE_FOREVER:
            changed["delete_archived_after_days"] = None
        return replace(config, **changed)


@dataclass(frozen=True, slots=True)
class ProjectSpec:
    """A new project."""

    name: str
    description: str = ""
    instructions: str = ""
    config: ConfigChanges = ConfigChanges()

    def checked(self) -> ProjectSpec:
        """This spec, once its name and texts pass the API's rules (for callers without
        the API's schemas, such as the operator CLI)."""
        PROJECT_NAME.check("name", self.name)
        check_text("description", self.description)
        check_text("instructions", self.instructions)
        return self


@dataclass(frozen=True, slots=True)
class ProjectChanges:
    """What to change in a project; None keeps a field (none of them can be cleared)."""

    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    status: ProjectStatus | None = None
    config: ConfigChanges | None = None
    paused: bool | None = None


@dataclass(frozen=True, slots=True)
class TaskTypeSpec:
    """A task type to create (None: the default) or, with the names of the fields given,
    the changes to one (a null `template` clears it)."""

    name: str | None = None
    template: str | None = None
    variables: tuple[str, ...] | None = None  # None or empty: the template's placeholders
    duplicate_handling: DuplicateHandling | None = None
    max_retries: int | None = None  # None: the project's default
    lease_duration_minutes: float | None = None  # None: the project's default
    priority: int | None = None
    retry_delay_seconds: float | None = None
    retry_backoff: RetryBackoff | None = None
    max_retry_delay_seconds: float | None = None
    max_concurrent: int | None = None  # None: no limit
    rate_limit: RateLimit | None = None  # None: no limit
    paused: bool | None = None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a caller asks for when creating (or, partly, updating) a task."""

    type_id: str | None = None
    instructions: str | None = None
    variables: dict[str, str] | None = None
    batch_id: str | None = None
    description: str | None = None
    priority: int | None = None  # None: the task type's
    run_after: float | None = None
    delay_seconds: float | None = None
    depends_on: tuple[str, ...] = ()  # task ids of the project (create only)
    depends_on_batch: str | None = None
    on_dependency_failure: DependencyFailure | None = None  # None: fail
