"""A short schemathesis run against a real server: no 5xx, no response off its schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz import STABLE_CHECKS, run_fuzz

pytestmark = pytest.mark.slow


def test_generated_requests_get_documented_answers(tmp_path: Path) -> None:
    generated, output = run_fuzz(tmp_path, examples=5, checks=STABLE_CHECKS)
    assert generated >= 500, output[-2000:]
