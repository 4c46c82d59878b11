"""`taskdriver work`: the ready-made agent. Each task's instructions go to a command's stdin;
its stdout is the result, its failure (stderr's tail) the error."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import Any

import click

from ..client import Client
from ..client.types import Lease, Task
from ..client.worker import Budget, Cancelled, GiveBack, Job, Outcome, Signals, run_fleet
from . import Connection
from .command_io import CommandIO

STDERR_TAIL_BYTES = 4000
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 5.0  # after a second signal, SIGTERM's grace before SIGKILL


def stdin_of(lease: Lease, with_project: bool) -> str:
    """What the command reads: the project's instructions (when there are any, and the
    server sends them), a blank line, then the task's; else the task's alone."""
    project = lease.get("project")
    instructions = lease["task"]["instructions"]
    if with_project and project and project["instructions"]:
        return f"{project['instructions']}\n\n{instructions}"
    return instructions


def dependencies_of(task: Task) -> str:
    """TASKDRIVER_DEPENDENCIES: what the task waited for, as JSON: its `dependsOn` tasks
    ({id, status, result, outputs} each) and its `dependsOnBatch` batch's counts (or null).
    A server without dependencies sends neither: no tasks, no batch."""
    return json.dumps({"tasks": task.get("dependencies", []),
                       "batch": task.get("dependencyBatch")})


def run_command(argv: list[str], permanent_codes: set[int], with_project: bool) -> Any:
    """A handler that runs `argv` for each task (see the command's help for the contract)."""

    def handle(lease: Lease, agent: str, job: Job) -> Outcome:
        task = lease["task"]
        env = {**os.environ,
               "TASKDRIVER_TASK_ID": task["id"],
               "TASKDRIVER_PROJECT_ID": task["projectId"],
               "TASKDRIVER_TYPE_ID": task["typeId"] or "",
               "TASKDRIVER_BATCH_ID": task["batchId"] or "",
               "TASKDRIVER_AGENT_NAME": agent,
               "TASKDRIVER_ATTEMPT": str(len(task["attempts"])),
               "TASKDRIVER_VARIABLES": json.dumps(task["variables"]),
               "TASKDRIVER_DEPENDENCIES": dependencies_of(task)}
        try:
            # A session of its own: a terminal's Ctrl-C reaches `work` only, which lets the
            # command finish; a second signal stops the command's whole process group.
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=env,
                                       start_new_session=True)
        except OSError as exc:  # not the task's fault: give it back and stop
            raise GiveBack(f"cannot run {argv[0]}: {exc.strerror}", fatal=True) from None
        pipes = CommandIO(process, stdin_of(lease, with_project).encode(), job.report_progress)
        while True:
            try:
                process.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if job.abandoning.is_set() or job.cancelled.is_set():
                    _stop_group(process)
                    pipes.finish()
                    if job.cancelled.is_set():
                        raise Cancelled() from None
                    raise GiveBack("stopped by a second signal") from None
        out, err = pipes.finish()
        stdout = _without_final_newline(out.decode(errors="replace"))
        if process.returncode == 0:
            return Outcome(True, result=stdout, outputs=_json_object(stdout))
        tail = err[-STDERR_TAIL_BYTES:].decode(errors="replace").strip()
        return Outcome(False, error=tail or f"exit code {process.returncode}",
                       can_retry=process.returncode not in permanent_codes)

    return handle


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group; SIGKILL whatever of it is left after a grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):  # members that ignored SIGTERM, if any
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _without_final_newline(text: str) -> str:
    """Stdout less the one newline that ends a printed line (`echo`, `print`) and is no part
    of the answer; other trailing whitespace is the command's to keep."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def _json_object(text: str) -> dict[str, Any] | None:
    """Stdout as outputs when it is exactly one JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def check_can_start(argv: list[str]) -> None:
    """Refuse, before anything is leased, a command that is not an executable on PATH (or
    at the path given): a typo must not fail the queue's tasks one after another."""
    if shutil.which(argv[0]) is None:
        raise click.ClickException(f"cannot run {argv[0]}: no such executable "
                                   f"{'file' if os.sep in argv[0] else 'on PATH'} "
                                   f"(nothing was leased)")


class RateLimitNotice:
    """Says once per wait, for all the fleet's agents together, that the server's rate
    limit holds `work` back and for how long."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.quiet_until = 0.0
        self.lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self.lock:
            now = time.monotonic()
            if now >= self.quiet_until:
                click.echo(f"rate limited by {self.url} (HTTP 429): waiting {seconds:.0f}s "
                           f"as its Retry-After says (raise or turn off the server's "
                           f"TASKDRIVER_RATE_LIMIT for a fleet)", err=True)
            self.quiet_until = max(self.quiet_until, now + seconds)


def check_server(connection: Connection) -> None:
    """Fail at once, with one line naming the URL, when no server answers there."""
    Client(connection.url, retries=0).health()


def _agent_names(agent: str, concurrency: int) -> list[str]:
    return [agent] if concurrency == 1 else [f"{agent}-{i}" for i in range(1, concurrency + 1)]


def _install_signal_handlers(signals: Signals) -> None:
    def on_signal(number: int, frame: FrameType | None) -> None:
        if signals.stopping.is_set():
            click.echo("second signal: stopping the running commands (their tasks go back "
                       "to the queue untouched)", err=True)
            signals.abandoning.set()
        else:
            click.echo("stopping: no new tasks; running ones finish (signal again to "
                       "abandon them)", err=True)
            signals.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


@click.command("work", context_settings={"allow_interspersed_args": False})
@click.option("--project", "-p", required=True, help="Project id or name.")
@click.option("--agent", "-a", required=True, help="Agent name (NAME-1 … NAME-N with "
                                                   "--concurrency N).")
@click.option("--concurrency", "-c", default=1, show_default=True,
              type=click.IntRange(1, 256), help="Tasks run at once, each its own agent.")
@click.option("--max-tasks", type=click.IntRange(1), default=None,
              help="Stop after this many tasks (all agents together).")
@click.option("--wait", "empty_wait", type=click.FloatRange(0), default=None,
              help="Stop when the queue stays empty this many seconds (default: never).")
@click.option("--permanent-exit-codes", default="", metavar="CODES",
              help="Comma list of exit codes that fail a task for good (no retry).")
@click.option("--no-project-instructions", "without_project", is_flag=True,
              help="Send the task's instructions alone, without the project's.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def command(connection: Connection, project: str, agent: str, concurrency: int,
            max_tasks: int | None, empty_wait: float | None, permanent_exit_codes: str,
            without_project: bool, command: tuple[str, ...]) -> None:
    """Lease tasks and run COMMAND for each: the project's instructions (if any), a blank line and
    the task's instructions on stdin, and TASKDRIVER_TASK_ID, TASKDRIVER_PROJECT_ID,
    TASKDRIVER_TYPE_ID, TASKDRIVER_BATCH_ID, TASKDRIVER_AGENT_NAME, TASKDRIVER_ATTEMPT,
    TASKDRIVER_VARIABLES (JSON) and TASKDRIVER_DEPENDENCIES (JSON: {"tasks": [{id, status,
    result, outputs}], "batch": {batchId, total, completed, failed, cancelled} or null}) in its
    environment. Exit 0 completes the task with stdout as its result (and as its outputs too
    when stdout is one JSON object); any other exit fails it with the tail of stderr, to be
    retried unless the code is in --permanent-exit-codes. The lease is kept alive while
    COMMAND runs; should an operator cancel the task, COMMAND is stopped (SIGTERM, then
    SIGKILL) and nothing is reported. Lines `::progress <0-100> <message>` on stderr are sent
    as the task's progress (at most once a second), not kept in the error. SIGINT/SIGTERM:
    take no more tasks and let running ones finish; a second signal stops them and gives them
    back to the queue. Options of `work` come before COMMAND (an unknown one is an error); put
    `--` before a COMMAND that has options of its own. A COMMAND that cannot start leases
    nothing; one that stops starting mid-run gives its task back untouched and ends `work`.

    Example: taskdriver work -p audits -a claude -c 4 --wait 60 -- claude -p
    """
    argv = list(command)
    check_can_start(argv)
    check_server(connection)
    try:
        permanent = {int(code) for code in permanent_exit_codes.split(",") if code.strip()}
    except ValueError:
        raise click.BadParameter("must be a comma list of integers",
                                 param_hint="--permanent-exit-codes") from None
    signals = Signals()
    _install_signal_handlers(signals)
    names = _agent_names(agent, concurrency)
    click.echo(f"working {project} as {', '.join(names)}: {' '.join(argv)}", err=True)
    started = time.monotonic()
    notice = RateLimitNotice(connection.url)
    tally, errors = run_fleet(lambda name: connection.agent(project, name,
                                                            on_rate_limit=notice), names,
                              run_command(argv, permanent, not without_project),
                              budget=Budget(max_tasks), signals=signals, empty_wait=empty_wait,
                              say=lambda line: click.echo(line, err=True))
    took = time.monotonic() - started
    click.echo(f"worked {tally.completed + tally.failed + tally.lost} tasks in {took:.1f}s: "
               f"{tally.completed} completed, {tally.failed} failed, {tally.lost} lost"
               + (f", {tally.released} given back" if tally.released else "")
               + (f", {tally.cancelled} cancelled" if tally.cancelled else ""), err=True)
    for error in dict.fromkeys(str(error) for error in errors):  # each distinct one, once
        click.echo(f"Error: {error}", err=True)
    if errors:
        sys.exit(1)
