"""What a person sees of `taskdriver` in a real terminal (tmux): the progress bar of
`submit`, the lines of `work` and the report of `status`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from taskdriver.client import Client

from conftest import ADMIN_TOKEN
from live_server import serving

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed (scripts/install-test-deps installs it as root)")]
BIN = Path(sys.executable).parent


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout


def test_submit_work_and_status_in_a_terminal(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"instructions": f"item {i}"}) + "\n"
                             for i in range(3000)))
    name = f"td-{uuid.uuid4().hex[:8]}"
    with serving(tmp_path / "data", 2, TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as server:
        Client(server.url, ADMIN_TOKEN).create_project("terminal")
        tmux("new-session", "-d", "-s", name, "-x", "110", "-y", "40",
             f"env TASKDRIVER_URL={server.url} TASKDRIVER_TOKEN={ADMIN_TOKEN} "
             f"PATH={BIN}:/usr/bin:/bin bash --norc --noprofile")
        try:
            tmux("send-keys", "-t", name, "clear; taskdriver submit -p terminal "
                 f"{tasks} && taskdriver work -p terminal -a t -c 2 --max-tasks 3 -- cat "
                 "&& taskdriver status -p terminal; echo FINISHED", "Enter")
            deadline = time.monotonic() + 120
            screen = ""
            while "FINISHED\n" not in screen:
                assert time.monotonic() < deadline, screen
                time.sleep(0.5)
                screen = tmux("capture-pane", "-p", "-t", name)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", name], timeout=30, check=False)
    (tmp_path / "screen.txt").write_text(screen)
    assert "3000/3000" in screen or "3000 tasks" in screen  # tqdm's bar, drawn on a tty
    assert "created 3000, duplicates skipped 0, errors 0" in screen
    assert screen.count("done    ") == 3 and "worked 3 tasks" in screen
    assert "tasks: 2997 queued, 0 running, 3 completed, 0 failed, 0 waiting (3000 in all)" in screen
    assert "Traceback" not in screen
