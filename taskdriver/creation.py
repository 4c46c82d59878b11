"""Creating tasks set-wise: one look for duplicates and one store for a whole bulk.

Called by the service inside a shared project section. Each spec is checked alone (its
type, variables and instructions, by `rules`), then the duplicate keys of every spec
are looked up in one query and the new tasks stored in one go (`ProjectTx.add_tasks`).
A spec answered by a task made earlier in the same bulk sees it as a duplicate, exactly as
if the specs had come one by one.
"""

from __future__ import annotations

from typing import NamedTuple

from . import rules
from .errors import FieldError, TaskDriverError
from .models import Project, Task, TaskSpec, TaskStatus, TaskType, new_id_within
from .storage import ProjectTx
from .templates import duplicate_key

Outcome = tuple[Task, bool] | TaskDriverError
"""Per spec: (the new task, True), (the task it duplicates, False), or why it was refused."""


class _Draft(NamedTuple):
    spec: TaskSpec
    task_type: TaskType | None
    instructions: str
    key: str | None


def new_tasks(tx: ProjectTx, project: Project, specs: list[TaskSpec], now: float
              ) -> list[Outcome]:
    """Check, deduplicate and store the tasks these specs ask for; an outcome per spec."""
    types: dict[str, TaskType | None] = {}
    drafts = [_draft(tx, types, spec) for spec in specs]
    unique = {d.key for d in drafts
              if isinstance(d, _Draft) and d.key and rules.checks_duplicates(d.task_type)}
    holders = tx.find_duplicates(unique) if unique else {}
    seqs = iter(tx.next_seqs(sum(isinstance(d, _Draft) for d in drafts)))
    outcomes: list[Outcome] = []
    created: list[Task] = []
    for draft in drafts:
        if not isinstance(draft, _Draft):
            outcomes.append(draft)
            continue
        try:
            existing = rules.duplicate_of(draft.task_type,
                                          holders.get(draft.key) if draft.key else None)
        except TaskDriverError as exc:
            outcomes.append(exc)
            continue
        if existing is not None:  # an `ignore` type answers with the task already there
            outcomes.append((existing, False))
            continue
        task = _task(project, draft, next(seqs), now)
        if task.duplicate_key in unique:
            holders[task.duplicate_key] = task
        created.append(task)
        outcomes.append((task, True))
    tx.add_tasks(created, unique)
    return outcomes


def _draft(tx: ProjectTx, types: dict[str, TaskType | None], spec: TaskSpec
           ) -> _Draft | TaskDriverError:
    """A spec checked against its type (looked up once per bulk), or why it is refused."""
    task_type = None
    try:
        if spec.type_id is not None:
            if spec.type_id not in types:
                types[spec.type_id] = tx.get_task_type(spec.type_id)
            task_type = types[spec.type_id]
            if task_type is None:
                raise FieldError("typeId", "Task type not found in this project", spec.type_id)
        variables = spec.variables or {}
        instructions = rules.instructions_for(task_type, variables, spec.instructions)
    except TaskDriverError as exc:
        return exc
    key = duplicate_key(task_type.id, variables) if task_type else None
    return _Draft(spec, task_type, instructions, key)


def _task(project: Project, draft: _Draft, seq: int, now: float) -> Task:
    spec, task_type = draft.spec, draft.task_type
    return Task(id=new_id_within(project.id), project_id=project.id, seq=seq,
                type_id=spec.type_id, instructions=draft.instructions,
                variables=spec.variables or {}, batch_id=spec.batch_id,
                description=spec.description,
                priority=rules.priority_of(task_type, spec.priority),
                run_after=rules.start_moment(spec.run_after, spec.delay_seconds, now),
                status=TaskStatus.QUEUED, max_retries=rules.max_retries(task_type, project),
                created_at=now, updated_at=now, duplicate_key=draft.key)
