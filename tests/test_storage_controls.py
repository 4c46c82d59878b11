"""The storage contract's fleet-control lookups, on both backends (`storage/base.py`): a
claim passing over excluded types, a type's load (running tasks, recent lease starts), and
due counts by type."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import pytest
from test_storage_contract import NOW, a_task, stored_project

from taskdriver.answers import TaskFilter, TypeLoad
from taskdriver.models import DuplicateHandling, RateLimit, TaskStatus, TaskType, new_id_within
from taskdriver.storage import Storage, open_storage

from conftest import ALL_BACKENDS, postgres_schema

BACKENDS = ALL_BACKENDS


@pytest.fixture
def storage(tmp_path: Path, backend: str) -> Iterator[Storage]:
    with postgres_schema() if backend == "postgresql" else nullcontext(None) as url:
        opened = open_storage(url or f"file:{tmp_path / 'data'}")
        yield opened
        opened.close()


def a_type(project_id: str, name: str) -> TaskType:
    return TaskType(id=new_id_within(project_id), project_id=project_id, name=name,
                    template=None, variables=(), duplicate_handling=DuplicateHandling.ALLOW,
                    max_retries=None, lease_duration_minutes=None, created_at=NOW,
                    updated_at=NOW)


def test_a_claim_passes_over_excluded_types_in_priority_then_age_order(
        storage: Storage) -> None:
    project = stored_project(storage)
    full, free = a_type(project.id, "full"), a_type(project.id, "free")
    tasks = [a_task(project, 0, type_id=full.id, priority=5),
             a_task(project, 1, type_id=free.id),
             a_task(project, 2),  # untyped
             a_task(project, 3, type_id=free.id, priority=1)]
    with storage.project_tx(project.id) as ptx:
        ptx.put_task_type(full)
        ptx.put_task_type(free)
        for task in tasks:
            ptx.put_task(task)
    with storage.project_tx(project.id, shared=True) as ptx:
        assert ptx.next_due(NOW) == tasks[0]
        assert ptx.next_due(NOW, {full.id}) == tasks[3]
        assert ptx.claim_next(NOW, {full.id, free.id}) == tasks[2]
        assert ptx.due_count(full.id, NOW) == 1 and ptx.due_count(free.id, NOW) == 2


def test_a_types_load_counts_its_running_tasks_and_recent_lease_starts(
        storage: Storage) -> None:
    project = stored_project(storage)
    kind = replace(a_type(project.id, "kind"), rate_limit=RateLimit(5, 10))
    with storage.project_tx(project.id) as ptx:
        ptx.put_task_type(kind)
        for seq in range(3):
            ptx.put_task(a_task(project, seq, type_id=kind.id))
    with storage.project_tx(project.id, shared=True) as ptx:
        assert ptx.type_load(kind.id, NOW, lock=True) == TypeLoad(0, 0)
        for seq, task in enumerate(ptx.list_tasks(TaskFilter(), 10, 0)[0][:2]):
            ptx.put_task(replace(task, status=TaskStatus.RUNNING, assigned_to=f"a{seq}",
                                 assigned_at=NOW + seq))
            ptx.record_lease_start(kind.id, NOW + seq, NOW - 86_400)
    with storage.project_tx(project.id, write=False) as ptx:
        assert ptx.type_load(kind.id, None) == TypeLoad(2, 0)
        assert ptx.type_load(kind.id, NOW) == TypeLoad(2, 2)
        assert ptx.type_load(kind.id, NOW + 1) == TypeLoad(2, 1)
