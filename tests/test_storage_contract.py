"""The storage contract of `taskdriver/storage/base.py`, clause by clause, on every backend.

Like huey's one suite over every storage: each test drives a backend only through the
interface's methods and checks what its docstrings promise.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from taskdriver.answers import TaskFilter
from taskdriver.errors import NotFound
from taskdriver.models import (
    DuplicateHandling,
    IdempotencyRecord,
    Project,
    ProjectConfig,
    ProjectStatus,
    Session,
    Task,
    TaskStatus,
    TaskType,
    new_id,
    new_id_within,
)
from taskdriver.storage import Storage, open_storage
from taskdriver.storage.base import Contention

from conftest import ALL_BACKENDS, postgres_schema

BACKENDS = ALL_BACKENDS
NOW = 1_700_000_000.0


class Boom(Exception):
    """Raised inside a section to abandon it."""


@pytest.fixture
def storage_url(tmp_path: Path, backend: str) -> Iterator[str]:
    if backend == "file":
        yield f"file:{tmp_path / 'data'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def storage(storage_url: str) -> Iterator[Storage]:
    opened = open_storage(storage_url)
    yield opened
    opened.close()


def a_project(name: str = "p") -> Project:
    return Project(id=new_id(), name=name, description="", instructions="",
                   status=ProjectStatus.ACTIVE, config=ProjectConfig(), created_at=NOW,
                   updated_at=NOW, owner_prefixed_ids=True)


def a_task(project: Project, seq: int, **fields) -> Task:
    base = Task(id=new_id_within(project.id), project_id=project.id, seq=seq, type_id=None,
                instructions=f"task {seq}", variables={}, batch_id=None,
                status=TaskStatus.QUEUED, max_retries=3, created_at=NOW + seq,
                updated_at=NOW + seq)
    return replace(base, **fields)


def stored_project(storage: Storage, name: str = "p") -> Project:
    project = a_project(name)
    with storage.global_tx() as tx:
        tx.put_project(project)
    return project


# -- sections --------------------------------------------------------------------------------

def test_read_only_sections_refuse_writes(storage: Storage) -> None:
    project = stored_project(storage)
    with storage.global_tx(write=False) as tx, pytest.raises(RuntimeError):
        tx.put_project(a_project("q"))
    with storage.project_tx(project.id, write=False) as ptx:
        for write in (lambda: ptx.put_task(a_task(project, 1)),
                      lambda: ptx.delete_task(new_id()),
                      lambda: ptx.put_idempotency(IdempotencyRecord("k", "f", NOW, {}))):
            with pytest.raises(RuntimeError):
                write()


def test_a_raising_block_keeps_nothing(storage: Storage) -> None:
    project = stored_project(storage)
    with pytest.raises(Boom), storage.project_tx(project.id) as ptx:
        ptx.put_task(a_task(project, 1))
        raise Boom
    with pytest.raises(Boom), storage.global_tx() as tx:
        tx.put_project(a_project("ghost"))
        raise Boom
    with storage.project_tx(project.id, write=False) as ptx:
        assert ptx.list_tasks(TaskFilter(), 10, 0) == ([], 0)
    with storage.global_tx(write=False) as tx:
        assert tx.project_by_name("ghost") is None


def test_a_section_sees_its_own_writes_and_a_later_one_sees_them_too(storage: Storage
                                                                     ) -> None:
    project = stored_project(storage)
    task = a_task(project, 1)
    with storage.project_tx(project.id) as ptx:
        ptx.put_task(task)
        assert ptx.get_task(task.id) == task
    with storage.project_tx(project.id, write=False) as ptx:
        assert ptx.get_task(task.id) == task


def test_lookups_return_none_and_project_tx_raises_not_found(storage: Storage) -> None:
    project = stored_project(storage)
    with storage.global_tx(write=False) as tx:
        assert tx.get_project(new_id()) is None
        assert tx.project_by_name("nobody") is None
        assert tx.session_by_token_hash("0" * 64) is None
        assert tx.get_idempotency("nothing") is None
    with storage.project_tx(project.id, write=False) as ptx:
        assert ptx.get_task(new_id()) is None
        assert ptx.get_task_type(new_id()) is None
        assert ptx.task_type_by_name("none") is None
        assert ptx.next_due(NOW) is None
        assert ptx.delayed_count(NOW) == 0 and ptx.next_run_after(NOW) is None
        assert ptx.held_and_expired("nobody", NOW) == (None, [])
        assert ptx.find_duplicate("no-key") is None
    assert storage.project_of_task(new_id()) is None
    assert storage.project_of_task_type(new_id()) is None
    for write in (True, False):
        with pytest.raises(NotFound), storage.project_tx(new_id(), write=write):
            pass


def test_a_deleted_project_is_gone_with_everything_in_it(storage: Storage) -> None:
    project = stored_project(storage)
    task = a_task(project, 1)
    with storage.project_tx(project.id) as ptx:
        ptx.put_task(task)
    with storage.global_tx() as tx:
        tx.delete_project(project.id)
    with pytest.raises(NotFound), storage.project_tx(project.id, write=False):
        pass
    assert storage.project_of_task(task.id) is None


# -- records and indexes ----------------------------------------------------------------------

def test_owner_lookup_finds_the_project_of_a_task_and_a_task_type(storage: Storage) -> None:
    first, second = stored_project(storage, "a"), stored_project(storage, "b")
    task = a_task(second, 1)
    task_type = TaskType(id=new_id_within(second.id), project_id=second.id, name="t",
                         template=None, variables=(), duplicate_handling=DuplicateHandling.ALLOW,
                         max_retries=None, lease_duration_minutes=None, created_at=NOW,
                         updated_at=NOW)
    with storage.project_tx(second.id) as ptx:
        ptx.put_task(task)
        ptx.put_task_type(task_type)
    assert storage.project_of_task(task.id) == second
    assert storage.project_of_task_type(task_type.id) == second
    assert first.id != second.id


def test_the_queue_indexes_follow_every_put(storage: Storage) -> None:
    project = stored_project(storage)
    tasks = []
    with storage.project_tx(project.id) as ptx:
        for i in range(4):
            tasks.append(a_task(project, ptx.next_seq(), duplicate_key="k" if i < 2 else None,
                                batch_id="b" if i % 2 else None))
            ptx.put_task(tasks[-1])
    with storage.project_tx(project.id) as ptx:
        assert ptx.next_due(NOW) == tasks[0]
        leased = replace(tasks[0], status=TaskStatus.RUNNING, assigned_to="agent",
                         assigned_at=NOW)
        ptx.put_task(leased)
        assert ptx.next_due(NOW) == tasks[1]
        assert ptx.running_tasks() == [leased]
        assert ptx.held_and_expired("agent", NOW) == (leased, [])
        assert ptx.find_duplicate("k") == leased
        ptx.put_task(replace(leased, status=TaskStatus.FAILED, assigned_to=None))
        assert ptx.find_duplicate("k") == tasks[1]  # failed tasks are no duplicates
        assert ptx.next_seq() > tasks[-1].seq
    with storage.project_tx(project.id, write=False) as ptx:
        listed, total = ptx.list_tasks(TaskFilter(), 2, 1)
        assert [t.id for t in listed] == [tasks[1].id, tasks[2].id] and total == 4
        assert ptx.list_tasks(TaskFilter(batch_id="b"), 10, 0)[1] == 2
        counts = ptx.status_counts()
        assert counts[TaskStatus.QUEUED] == 3 and counts[TaskStatus.FAILED] == 1
        assert ptx.status_counts("b")[TaskStatus.QUEUED] == 2


def test_next_due_takes_priority_then_age_and_waits_for_run_after(storage: Storage
                                                                  ) -> None:
    project = stored_project(storage)
    with storage.project_tx(project.id) as ptx:
        old_low = a_task(project, 1)
        waiting_high = a_task(project, 2, priority=9, run_after=NOW + 100)
        young_high = a_task(project, 3, priority=5)
        old_high = a_task(project, 0, priority=5)
        for task in (old_low, waiting_high, young_high, old_high):
            ptx.put_task(task)
    with storage.project_tx(project.id) as ptx:
        assert ptx.next_due(NOW) == old_high
        assert ptx.delayed_count(NOW) == 1 and ptx.next_run_after(NOW) == NOW + 100
        assert ptx.next_due(NOW + 100) == waiting_high  # its moment came
        assert ptx.delayed_count(NOW + 100) == 0 and ptx.next_run_after(NOW + 100) is None
        ptx.put_task(replace(old_high, status=TaskStatus.RUNNING, assigned_to="a"))
        ptx.put_task(replace(waiting_high, priority=-1))  # lowered, still waiting
    with storage.project_tx(project.id, write=False) as ptx:
        assert ptx.next_due(NOW) == young_high
        assert ptx.delayed_count(NOW) == 1
        assert ptx.next_due(NOW + 100) == young_high  # due now, but lower than young_high


def test_recent_activity_counts_outcomes_since_a_moment(storage: Storage) -> None:
    project = stored_project(storage)
    with storage.project_tx(project.id) as ptx:
        ptx.put_task(a_task(project, 1, status=TaskStatus.COMPLETED, assigned_at=NOW + 10,
                            completed_at=NOW + 40, updated_at=NOW + 40))
        ptx.put_task(a_task(project, 2, status=TaskStatus.FAILED, updated_at=NOW + 50))
    with storage.project_tx(project.id, write=False) as ptx:
        recent = ptx.recent_activity(NOW)
        assert (recent.completed, recent.failed) == (1, 1)
        assert recent.completed_duration_total == pytest.approx(30.0)
        assert ptx.recent_activity(NOW + 60).completed == 0


def test_sessions_admin_tokens_and_idempotency_records(storage: Storage) -> None:
    project = stored_project(storage)
    session = Session(id=new_id(), token_hash="a" * 64, agent_name="agent",
                      project_id=project.id, created_at=NOW, expires_at=NOW + 60,
                      last_activity=NOW)
    old, young = (IdempotencyRecord("old", "f1", NOW, {"id": "x"}),
                  IdempotencyRecord("young", "f2", NOW + 100, {"id": "y"}))
    with storage.global_tx() as tx:
        tx.put_session(session)
        tx.add_admin_token("b" * 64, NOW)
        tx.put_idempotency(old)
    with storage.project_tx(project.id) as ptx:
        ptx.put_idempotency(old)
        ptx.put_idempotency(young)
    with storage.global_tx() as tx:
        assert tx.session_by_token_hash("a" * 64) == session
        assert tx.session_with_project("a" * 64) == (session, project)
        assert tx.session_with_project("c" * 64) is None
        assert tx.has_admin_token("b" * 64) and tx.admin_token_count() == 1
        assert tx.get_idempotency("old") == old and tx.get_idempotency("young") is None
        tx.delete_session(session.id)
        tx.delete_session(session.id)  # no error when it is gone
        assert tx.sessions() == []
    with storage.project_tx(project.id) as ptx:
        assert ptx.purge_idempotency(NOW + 50) == 1
        assert ptx.get_idempotency("old") is None and ptx.get_idempotency("young") == young


# -- across processes ---------------------------------------------------------------------------

WRITER = """
import sys
from taskdriver.models import Task, TaskStatus, new_id_within
from taskdriver.storage import open_storage
url, project_id = sys.argv[1:3]
storage = open_storage(url)
with storage.project_tx(project_id) as tx:
    task = Task(id=new_id_within(project_id), project_id=project_id, seq=tx.next_seq(),
                type_id=None, instructions="from another process", variables={},
                batch_id=None, status=TaskStatus.QUEUED, max_retries=3, created_at=1.0,
                updated_at=1.0)
    tx.put_task(task)
storage.close()
print(task.id)
"""


def test_another_process_sees_a_write_and_its_writes_are_seen(storage: Storage,
                                                             storage_url: str) -> None:
    project = stored_project(storage)
    with storage.project_tx(project.id, write=False) as ptx:
        assert ptx.list_tasks(TaskFilter(), 10, 0)[1] == 0  # this process has read it
    written = subprocess.run([sys.executable, "-c", WRITER, storage_url, project.id],
                             capture_output=True, text=True, timeout=120, check=True)
    task_id = written.stdout.strip()
    deadline = time.monotonic() + 5  # seen at once; the deadline only bounds a failure
    while time.monotonic() < deadline:
        with storage.project_tx(project.id, write=False) as ptx:
            seen = ptx.get_task(task_id)
        if seen is not None:
            break
    assert seen is not None and seen.instructions == "from another process"
    found = storage.project_of_task(task_id)
    assert found is not None and found.id == project.id


def test_a_watch_sees_its_project_resumed(storage: Storage) -> None:
    # The project is kept apart from its tasks (global records), yet resuming it may make
    # its tasks leasable: a waiting poll must hear of it as of a new task.
    project = replace(stored_project(storage), paused=True)
    with storage.global_tx() as tx:
        tx.put_project(project)
    watch = storage.watch(project.id)
    assert watch.wait(0.2) is False  # nothing changed yet
    with storage.global_tx() as tx:
        tx.put_project(replace(project, paused=False))
    assert watch.wait(5) is True  # seen at once; the 5 s only bound a failure


# -- shared sections (the queue's writers) ------------------------------------------------------

def test_shared_sections_claim_lock_and_add_like_the_queue_lookups(storage: Storage) -> None:
    project = stored_project(storage)
    with storage.project_tx(project.id, shared=True) as ptx:
        seqs = ptx.next_seqs(3)
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        tasks = [a_task(project, seq, duplicate_key=f"k{i}") for i, seq in enumerate(seqs)]
        ptx.add_tasks(tasks, {"k0"})
        assert ptx.find_duplicates(["k0", "k2", "none"]) == {"k0": tasks[0], "k2": tasks[2]}
    with storage.project_tx(project.id, shared=True) as ptx:
        assert ptx.next_seq() > seqs[-1]
        claimed = ptx.claim_next(NOW)
        assert claimed == tasks[0]
        ptx.put_task(replace(claimed, status=TaskStatus.RUNNING, assigned_to="a",
                             lease_expires_at=NOW + 60))
        assert ptx.lock_task(tasks[1].id) == tasks[1] and ptx.lock_task(new_id()) is None
    with storage.project_tx(project.id, shared=True) as ptx:
        assert ptx.expired_leases(NOW + 59) == []
        [expired] = ptx.expired_leases(NOW + 60)
        assert expired.id == tasks[0].id
    with storage.project_tx(project.id, shared=True) as ptx:
        assert ptx.held_and_expired("a", NOW + 59) == (expired, [])
        assert ptx.held_and_expired("a", NOW + 60) == (expired, [expired])
        assert ptx.held_and_expired("b", NOW + 60) == (None, [expired])
    with storage.project_tx(project.id, write=False) as ptx:
        assert ptx.status_counts()[TaskStatus.RUNNING] == 1


def _overlap_only(backend: str) -> None:
    if backend == "file":
        pytest.skip("the file backend runs shared sections one at a time: they never overlap")


def test_concurrent_claims_take_different_tasks_without_waiting(storage: Storage,
                                                                backend: str) -> None:
    _overlap_only(backend)
    project = stored_project(storage)
    with storage.project_tx(project.id) as ptx:
        first, second = (a_task(project, seq) for seq in ptx.next_seqs(2))
        ptx.add_tasks([first, second], ())
    with storage.project_tx(project.id, shared=True) as one, \
            storage.project_tx(project.id, shared=True) as other:
        assert one.claim_next(NOW) == first
        assert other.claim_next(NOW) == second  # passed over `first`, held by `one`
        assert other.expired_leases(NOW) == []


def test_an_agents_second_running_task_and_a_second_unique_key_are_refused(
        storage: Storage, backend: str) -> None:
    _overlap_only(backend)
    project = stored_project(storage)
    with storage.project_tx(project.id) as ptx:
        first, second = (a_task(project, seq) for seq in ptx.next_seqs(2))
        ptx.add_tasks([first, second], ())
    with pytest.raises(Contention), storage.project_tx(project.id, shared=True) as other:
        with storage.project_tx(project.id, shared=True) as one:
            one.put_task(replace(one.claim_next(NOW), status=TaskStatus.RUNNING,
                                 assigned_to="agent"))
            claimed = other.claim_next(NOW)
        other.put_task(replace(claimed, status=TaskStatus.RUNNING, assigned_to="agent"))
    with pytest.raises(Contention), storage.project_tx(project.id, shared=True) as other:
        with storage.project_tx(project.id, shared=True) as one:
            one.add_tasks([a_task(project, one.next_seq(), duplicate_key="k")], {"k"})
        other.add_tasks([a_task(project, other.next_seq(), duplicate_key="k")], {"k"})
    with storage.project_tx(project.id, write=False) as ptx:
        assert ptx.status_counts()[TaskStatus.RUNNING] == 1
        assert ptx.status_counts()[TaskStatus.QUEUED] == 2
