"""kill -9 of every server process, again and again, while agents work (short version)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crash import run_crash

pytestmark = pytest.mark.slow


def test_ten_rounds_of_kill_9_lose_nothing_acknowledged(tmp_path: Path) -> None:
    result = run_crash(tmp_path / "data", rounds=10, tasks=8000, agents=4)
    assert 0 < result["completed_before_last_kill"] < 8000  # every kill hit live work
    assert result["completed"] >= result["completions_acknowledged"]
