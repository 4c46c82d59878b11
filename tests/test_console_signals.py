"""Ctrl-C in a real terminal: `taskdriver work` runs under a pseudo-terminal (its session's
controlling tty) and gets the terminal's own ^C, which the kernel sends to the whole
foreground process group, as a person's keyboard does."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskdriver.client import Client

from conftest import ADMIN_TOKEN
from live_server import LiveServer, serving

pytestmark = pytest.mark.slow
TASKDRIVER = Path(sys.executable).parent / "taskdriver"
CTRL_C = b"\x03"
DEADLINE_SECONDS = 60.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("signals") / "data", 2,
                 TASKDRIVER_ADMIN_TOKEN=ADMIN_TOKEN) as live:
        yield live


class Terminal:
    """`taskdriver …` as the session leader of a new pseudo-terminal; its output is kept."""

    def __init__(self, server: LiveServer, *args: str) -> None:
        env = {**os.environ, "TASKDRIVER_URL": server.url}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec at once, touching nothing of the parent
            try:
                os.execve(str(TASKDRIVER), [str(TASKDRIVER), *args], env)
            finally:
                os._exit(127)
        self.output = bytearray()
        self.status: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):  # EIO once the child's side is closed
            while chunk := os.read(self.fd, 4096):
                self.output.extend(chunk)

    def press_ctrl_c(self) -> None:
        os.write(self.fd, CTRL_C)

    def wait(self, within: float) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                self._reader.join(10)
                return self.status
            time.sleep(0.1)
        raise AssertionError(f"work did not exit within {within:.0f} s: {self.text}")

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def close(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@contextlib.contextmanager
def work_in_terminal(server: LiveServer, pids: Path, *args: str) -> Iterator[Terminal]:
    """A terminal running `work`; whatever of it and of its commands is left is killed."""
    terminal = Terminal(server, *args)
    try:
        yield terminal
    finally:
        terminal.close()
        for group in command_groups(pids):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


def command_groups(pids: Path) -> list[int]:
    """The process groups of the commands started so far (each writes its shell's $$)."""
    return [int(line) for line in pids.read_text().split()] if pids.exists() else []


def wait_for_commands(pids: Path, count: int) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(command_groups(pids)) < count:
        assert time.monotonic() < deadline, "the commands never started"
        time.sleep(0.1)


def group_alive(group: int) -> bool:
    """Whether any process (a zombie too) is still in the group."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_lets_running_commands_finish_and_leases_nothing_new(
        server: LiveServer, tmp_path: Path) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("ctrl-c")
    running = [operator.create_task(project["id"], instructions=str(i)) for i in range(2)]
    waiting = operator.create_task(project["id"], instructions="not taken")
    pids = tmp_path / "pids"
    script = f'echo $$ >> {pids}; cat >/dev/null; sleep 3; echo finished'
    with work_in_terminal(server, pids, "work", "-p", "ctrl-c", "-a", "t", "-c", "2", "--",
                          "sh", "-c", script) as terminal:
        wait_for_commands(pids, 2)
        terminal.press_ctrl_c()
        assert terminal.wait(DEADLINE_SECONDS) == 0, terminal.text
    assert "stopping: no new tasks" in terminal.text, terminal.text
    assert "worked 2 tasks" in terminal.text and "2 completed" in terminal.text
    for task in running:
        done = operator.get_task(task["id"])
        assert done["status"] == "completed" and done["result"] == "finished", done
        assert done["retryCount"] == 0 and [a["status"] for a in done["attempts"]] == [
            "completed"]
    left = operator.get_task(waiting["id"])
    assert left["status"] == "queued" and left["attempts"] == []


def test_a_second_ctrl_c_stops_each_command_group_and_gives_the_tasks_back(
        server: LiveServer, tmp_path: Path) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("twice")
    tasks = [operator.create_task(project["id"], instructions=str(i)) for i in range(2)]
    pids = tmp_path / "pids"
    # `sleep` is a child of the shell, in its process group: stopping only the shell would
    # leave it running (and `work` waiting for the pipe it holds).
    script = f'echo $$ >> {pids}; cat >/dev/null; sleep 30; echo never'
    with work_in_terminal(server, pids, "work", "-p", "twice", "-a", "t", "-c", "2", "--",
                          "sh", "-c", script) as terminal:
        wait_for_commands(pids, 2)
        terminal.press_ctrl_c()
        time.sleep(1)
        started = time.monotonic()
        terminal.press_ctrl_c()
        assert terminal.wait(DEADLINE_SECONDS) == 0, terminal.text
        took = time.monotonic() - started
    assert took < 20, f"work waited {took:.0f} s for its commands: {terminal.text}"
    assert "2 given back" in terminal.text, terminal.text
    deadline = time.monotonic() + 10  # the init process reaps the orphaned `sleep`s
    while any(group_alive(group) for group in command_groups(pids)):
        assert time.monotonic() < deadline, "a command's process group outlived work"
        time.sleep(0.1)
    for task in tasks:
        back = operator.get_task(task["id"])
        assert back["status"] == "queued" and back["retryCount"] == 0, back
        assert back["attempts"] == [] and back["assignedTo"] is None


def test_a_task_that_arrives_after_ctrl_c_is_given_back_untouched(server: LiveServer,
                                                                  tmp_path: Path) -> None:
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("late")
    pids = tmp_path / "pids"
    with work_in_terminal(server, pids, "work", "-p", "late", "-a", "t", "--", "sh", "-c",
                          f"echo $$ >> {pids}; cat") as terminal:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while "working late" not in terminal.text:
            assert time.monotonic() < deadline, terminal.text
            time.sleep(0.1)
        time.sleep(3)  # logged in, and waiting in its long poll for a task
        terminal.press_ctrl_c()
        time.sleep(0.5)
        task = operator.create_task(project["id"], instructions="late")  # wakes the poll
        assert terminal.wait(DEADLINE_SECONDS) == 0, terminal.text
    left = operator.get_task(task["id"])
    assert left["status"] == "queued" and left["attempts"] == [], terminal.text
    assert not pids.exists(), "a command ran after Ctrl-C"


def test_ctrl_c_on_an_idle_work_ends_its_long_polls_at_once(server: LiveServer,
                                                           tmp_path: Path) -> None:
    """A `work` waiting for tasks (each agent in a 30 s long poll) stops within seconds of
    Ctrl-C, not after its polls run out, and a task created afterwards is leased to nobody."""
    operator = Client(server.url, ADMIN_TOKEN)
    project = operator.create_project("idle")
    pids = tmp_path / "pids"
    with work_in_terminal(server, pids, "work", "-p", "idle", "-a", "t", "-c", "3", "--",
                          "sh", "-c", f"echo $$ >> {pids}; cat") as terminal:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while "working idle" not in terminal.text:
            assert time.monotonic() < deadline, terminal.text
            time.sleep(0.1)
        time.sleep(3)  # logged in, and waiting in their long polls
        started = time.monotonic()
        terminal.press_ctrl_c()
        assert terminal.wait(DEADLINE_SECONDS) == 0, terminal.text
        took = time.monotonic() - started
    assert took < 10, f"work took {took:.0f} s to stop: {terminal.text}"
    task = operator.create_task(project["id"], instructions="after work stopped")
    time.sleep(2)  # time for any poll the server still held to lease it
    left = operator.get_task(task["id"])
    assert left["status"] == "queued" and left["attempts"] == [], left
    assert not pids.exists(), "a command ran after Ctrl-C"
