"""Tasks as the file backend holds them in memory: what its indexes read, the rest packed.

A worker holds every task of each project it serves. As a frozen `Task` with its own
strings, variables dict and attempt records, a task took about 800 bytes there, while most
of it (instructions, variables, result, outputs, the attempt history) is read only when
that one task is answered. A `PackedTask` keeps as attributes only what the state's indexes
and filters read (status, seq, priority, holder, batch, type, duplicate key, the moments
the statistics count) and the rest as one JSON array in a `bytes`: about 420 bytes a task.
The `Task` is built again when a task is read: 4 to 10 microseconds for each task answered.
"""

from __future__ import annotations

from operator import attrgetter
from sys import intern
from typing import Any

import orjson

from ..errors import StorageError
from ..models import DependencyFailure, Task, TaskStatus
from .codec import decode_attempts, slot_setters

PACKED_FIELDS = ("max_retries", "instructions", "variables", "retry_count", "attempts",
                 "lease_expires_at", "error", "result", "outputs", "description",
                 "progress", "progress_message", "progress_at")
"""The fields a packed task keeps in `rest`, in this order: a packed array leaves off its
trailing values that equal their defaults (a queued task's is three values long)."""

_PACKED_DEFAULTS: tuple[Any, ...] = (None, None, None, 0, (), None, None, None, None, None,
                                     None, None, None)


class PackedTask:
    """One task as the file backend's state holds it (see the module's docstring).

    Replaced, never changed, like the `Task` it stands for: `ProjectState.apply` swaps in a
    new one with each put, so an index never sees a task change under it.
    """

    __slots__ = ("id", "seq", "type_id", "batch_id", "status", "duplicate_key",
                 "assigned_to", "assigned_at", "completed_at", "created_at", "updated_at",
                 "priority", "run_after", "depends_on", "depends_on_batch",
                 "on_dependency_failure", "rest")

    id: str
    seq: int
    type_id: str | None
    batch_id: str | None
    status: TaskStatus
    duplicate_key: str | None
    assigned_to: str | None
    assigned_at: float | None
    completed_at: float | None
    created_at: float
    updated_at: float
    priority: int
    run_after: float | None
    depends_on: tuple[str, ...]  # read by the dependents' index (`dependency_index.py`)
    depends_on_batch: str | None
    on_dependency_failure: DependencyFailure
    rest: bytes  # the PACKED_FIELDS as a JSON array, trailing defaults left off

    def stored(self, project_id: str) -> dict[str, Any]:
        """The task as its stored JSON decodes (its project's id is its state's: not
        kept): what a snapshot writes, without building the `Task`."""
        raw = dict(zip(PACKED_FIELDS, _PACKED_DEFAULTS, strict=True))
        raw.update(zip(PACKED_FIELDS, orjson.loads(self.rest), strict=False))
        raw.update(zip(_KEPT_FIELDS, _kept_values(self), strict=True))
        raw["project_id"] = project_id
        return raw

    def unpack(self, project_id: str) -> Task:
        """The whole task, as it was put: its slots set straight from the packed values
        (half the time of building it from a dict, which every read of a task pays)."""
        task = _new_record(Task)
        for set_slot, value in zip(_SET_KEPT, _kept_values(self), strict=True):
            set_slot(task, value)
        packed = orjson.loads(self.rest)
        packed += _PACKED_DEFAULTS[len(packed):]
        packed[_ATTEMPTS] = decode_attempts(packed[_ATTEMPTS])
        for set_slot, value in zip(_SET_PACKED, packed, strict=True):
            set_slot(task, value)
        _set_project_id(task, project_id)
        return task


_STATUSES = {status.value: status for status in TaskStatus}
_FAILURE_POLICIES = {policy.value: policy for policy in DependencyFailure}
_KEPT_FIELDS = PackedTask.__slots__[:-1]
_kept_values = attrgetter(*_KEPT_FIELDS)
_new_record = object.__new__
_TASK_SLOT_SETTERS = slot_setters(Task)
if _TASK_SLOT_SETTERS.keys() != {*_KEPT_FIELDS, *PACKED_FIELDS, "project_id"}:
    raise TypeError("a Task field is neither kept nor packed: add it to PackedTask or "
                    "PACKED_FIELDS, or the file backend would lose it")
_SET_KEPT = tuple(_TASK_SLOT_SETTERS[name] for name in _KEPT_FIELDS)
_SET_PACKED = tuple(_TASK_SLOT_SETTERS[name] for name in PACKED_FIELDS)
_set_project_id = _TASK_SLOT_SETTERS["project_id"]
_ATTEMPTS = PACKED_FIELDS.index("attempts")


class Packer:
    """Packs tasks for one state, sharing equal timestamps between consecutive tasks.

    The tasks of one bulk create were all made in the same moment: one float object for
    all their `created_at` and `updated_at` instead of one each (24 bytes a task).
    """

    __slots__ = ("_last_moment",)

    def __init__(self) -> None:
        self._last_moment = 0.0

    def _moment(self, value: float) -> float:
        if value == self._last_moment:
            return self._last_moment
        self._last_moment = value
        return value

    def pack(self, task: Task) -> PackedTask:
        """A task put by a live transaction."""
        packed = PackedTask()
        packed.id = task.id
        packed.seq = task.seq
        packed.type_id = shared_text(task.type_id)
        packed.batch_id = shared_text(task.batch_id)
        packed.status = task.status
        packed.duplicate_key = task.duplicate_key
        packed.assigned_to = shared_text(task.assigned_to)
        packed.assigned_at = task.assigned_at
        packed.completed_at = task.completed_at
        packed.created_at = self._moment(task.created_at)
        packed.updated_at = self._moment(task.updated_at)
        packed.priority = task.priority
        packed.run_after = task.run_after
        packed.depends_on = task.depends_on
        packed.depends_on_batch = shared_text(task.depends_on_batch)
        packed.on_dependency_failure = task.on_dependency_failure
        packed.rest = _packed_rest([task.max_retries, task.instructions, task.variables,
                                    task.retry_count, task.attempts, task.lease_expires_at,
                                    task.error, task.result, task.outputs, task.description,
                                    task.progress, task.progress_message, task.progress_at])
        return packed

    def pack_stored(self, raw: dict[str, Any]) -> PackedTask:
        """A task as stored (decoded JSON), without building the `Task` first: loading a
        100,000-task project packs each task straight from its line."""
        packed = PackedTask()
        packed.id = raw["id"]
        packed.seq = raw["seq"]
        packed.type_id = shared_text(raw["type_id"])
        packed.batch_id = shared_text(raw["batch_id"])
        packed.status = _STATUSES[raw["status"]]
        packed.duplicate_key = raw.get("duplicate_key")
        packed.assigned_to = shared_text(raw.get("assigned_to"))
        packed.assigned_at = raw.get("assigned_at")
        packed.completed_at = raw.get("completed_at")
        packed.created_at = self._moment(raw["created_at"])
        packed.updated_at = self._moment(raw["updated_at"])
        packed.priority = raw.get("priority", 0)
        packed.run_after = raw.get("run_after")
        packed.depends_on = tuple(raw.get("depends_on") or ())
        packed.depends_on_batch = shared_text(raw.get("depends_on_batch"))
        packed.on_dependency_failure = _FAILURE_POLICIES[
            raw.get("on_dependency_failure") or DependencyFailure.FAIL.value]
        packed.rest = _packed_rest([
            raw["max_retries"], raw["instructions"], raw["variables"],
            raw.get("retry_count", 0), raw.get("attempts"), raw.get("lease_expires_at"),
            raw.get("error"), raw.get("result"), raw.get("outputs"), raw.get("description"),
            raw.get("progress"), raw.get("progress_message"), raw.get("progress_at")])
        return packed


def _packed_rest(values: list[Any]) -> bytes:
    """The PACKED_FIELDS' values as JSON, without the trailing ones that are defaults."""
    while values[-1] is None:  # from lease_expires_at on, None by default
        values.pop()
    if len(values) == 5 and not values[4]:  # no attempts
        values.pop()
    if len(values) == 4 and values[3] == 0:  # no retries
        values.pop()
    try:
        encoded = orjson.dumps(values)
    except orjson.JSONEncodeError as exc:  # what the journal could not store either
        raise StorageError(f"cannot write storage: {exc}") from exc
    # A copy: the bytes orjson returns keep its whole write buffer (4 KB) allocated.
    return bytes(memoryview(encoded))


def shared_text(text: str | None) -> str | None:
    """One shared copy of a string that many tasks repeat (type and batch ids, agent
    names): a worker holds all of a project's tasks."""
    return None if text is None else intern(text)
