"""Each queue rule of `taskdriver/rules.py`, pure, with a fixed `now`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from taskdriver import rules
from taskdriver.errors import Conflict
from taskdriver.models import (
    AttemptStatus,
    DuplicateHandling,
    Idempotency,
    IdempotencyRecord,
    Project,
    ProjectConfig,
    ProjectStatus,
    Task,
    TaskStatus,
    TaskType,
)

NOW = 1_700_000_000.0
PROJECT = Project(id="p", name="p", description="", instructions="",
                  status=ProjectStatus.ACTIVE,
                  config=ProjectConfig(default_max_retries=2,
                                       default_lease_duration_minutes=10.0),
                  created_at=NOW, updated_at=NOW)
TYPE = TaskType(id="t", project_id="p", name="t", template=None, variables=(),
                duplicate_handling=DuplicateHandling.ALLOW, max_retries=5,
                lease_duration_minutes=1.5, created_at=NOW, updated_at=NOW)
QUEUED = Task(id="x", project_id="p", seq=1, type_id=None, instructions="do",
              variables={}, batch_id=None, status=TaskStatus.QUEUED, max_retries=1,
              created_at=NOW, updated_at=NOW)


def test_leases_and_budgets_come_from_the_type_else_the_project() -> None:
    assert rules.lease_minutes(TYPE, PROJECT) == 1.5
    assert rules.lease_minutes(replace(TYPE, lease_duration_minutes=None), PROJECT) == 10.0
    assert rules.lease_minutes(None, PROJECT) == 10.0
    assert rules.max_retries(TYPE, PROJECT) == 5
    assert rules.max_retries(None, PROJECT) == 2


def test_claim_opens_a_running_attempt_with_a_lease() -> None:
    task = rules.claim(QUEUED, "a", 2.0, NOW)
    assert task.status is TaskStatus.RUNNING and task.assigned_to == "a"
    assert task.lease_expires_at == NOW + 120 and task.assigned_at == NOW
    assert [a.status for a in task.attempts] == [AttemptStatus.RUNNING]
    with pytest.raises(Conflict):
        rules.claim(task, "b", 2.0, NOW)


def test_lease_expiry_is_inclusive_of_its_moment() -> None:
    task = rules.claim(QUEUED, "a", 1.0, NOW)
    assert not rules.lease_expired(task, NOW + 59.9)
    assert rules.lease_expired(task, NOW + 60)
    assert not rules.lease_expired(QUEUED, NOW + 10**6)


def test_complete_is_for_the_holder_and_idempotent() -> None:
    task = rules.claim(QUEUED, "a", 1.0, NOW)
    with pytest.raises(Conflict):
        rules.complete(task, "b", "r", None, NOW + 1)
    done = rules.complete(task, "a", "r", {"k": 1}, NOW + 5)
    assert done.status is TaskStatus.COMPLETED and done.completed_at == NOW + 5
    assert done.attempts[-1].status is AttemptStatus.COMPLETED and done.lease_expires_at is None
    assert rules.complete(done, "a", "other", None, NOW + 9) is done


def test_fail_requeues_while_retries_remain_then_fails() -> None:
    first = rules.fail(rules.claim(QUEUED, "a", 1.0, NOW), "a", "boom", True, NOW + 1)
    assert first.status is TaskStatus.QUEUED and first.retry_count == 1
    assert first.assigned_to is None and first.error == "boom"
    second = rules.fail(rules.claim(first, "a", 1.0, NOW + 2), "a", "boom", True, NOW + 3)
    assert second.status is TaskStatus.FAILED and not rules.has_retries_left(second)
    no_retry = rules.fail(rules.claim(QUEUED, "a", 1.0, NOW), "a", "bad", False, NOW + 1)
    assert no_retry.status is TaskStatus.FAILED and no_retry.retry_count == 0


def test_an_expired_lease_is_a_timeout_that_spends_a_retry() -> None:
    expired = rules.expire(rules.claim(QUEUED, "a", 1.0, NOW), NOW + 90)
    assert expired.status is TaskStatus.QUEUED and expired.retry_count == 1
    assert expired.attempts[-1].status is AttemptStatus.TIMEOUT
    assert "expired (0.5 min ago)" in (expired.error or "")


def test_extend_counts_from_the_later_of_now_and_the_old_expiry() -> None:
    task = rules.claim(QUEUED, "a", 1.0, NOW)
    assert rules.extend_lease(task, "a", 1.0, NOW + 10).lease_expires_at == NOW + 120
    assert rules.extend_lease(task, "a", 1.0, NOW + 500).lease_expires_at == NOW + 560
    with pytest.raises(Conflict):
        rules.extend_lease(task, "b", 1.0, NOW)


def test_retry_gives_a_failed_task_a_fresh_budget() -> None:
    failed = rules.fail(rules.claim(QUEUED, "a", 1.0, NOW), "a", "x", False, NOW + 1)
    again = rules.retry(failed, NOW + 2)
    assert again.status is TaskStatus.QUEUED and again.retry_count == 0
    with pytest.raises(Conflict):
        rules.retry(QUEUED, NOW)


def test_counts_and_averages() -> None:
    counts = {status: 0 for status in TaskStatus}
    assert not rules.in_progress(counts)
    assert rules.in_progress({**counts, TaskStatus.RUNNING: 1})
    assert rules.average_duration(0, 0.0) == 0.0
    assert rules.average_duration(3, 10.0) == 3.333


def test_an_idempotency_key_answers_repeats_for_24_hours() -> None:
    request = Idempotency("k", "f")
    record = IdempotencyRecord("k", "f", NOW, {"id": "x"})
    assert rules.idempotent_outcome(None, request, NOW) is None
    assert rules.idempotent_outcome(record, request, NOW + 86399) == {"id": "x"}
    assert rules.idempotent_outcome(record, request, NOW + 86400) is None
    with pytest.raises(Conflict):
        rules.idempotent_outcome(record, Idempotency("k", "other"), NOW + 1)
