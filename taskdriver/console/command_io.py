"""A `work` command's pipes, each on a thread of its own: its stdin fed, its stdout kept,
and its stderr read line by line as it comes, so `::progress <0-100> <message>` lines are
sent while the command runs (at most once a second) and kept out of the error's tail."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO

PROGRESS_PREFIX = b"::progress"
PROGRESS_INTERVAL_SECONDS = 1.0  # at most one report a second, the latest one
TAIL_LINES = 200  # stderr lines kept for the error (cut to STDERR_TAIL_BYTES by the caller)

Report = Callable[[float | None, str | None], None]


def parse_progress(line: bytes) -> tuple[float, str | None] | None:
    """`::progress 40 halfway there` -> (40.0, "halfway there"); None for any other line
    (a malformed progress line is an ordinary stderr line)."""
    if not line.startswith(PROGRESS_PREFIX + b" "):
        return None
    parts = line[len(PROGRESS_PREFIX):].decode(errors="replace").strip().split(None, 1)
    try:
        progress = float(parts[0]) if parts else -1.0
    except ValueError:
        return None
    if not 0 <= progress <= 100:
        return None
    message = parts[1][:1000] if len(parts) > 1 else None
    return progress, message


class Throttle:
    """Sends the latest progress at most once per interval; `flush` sends what is left."""

    def __init__(self, report: Report, interval: float = PROGRESS_INTERVAL_SECONDS) -> None:
        self.report = report
        self.interval = interval
        self.last_sent = -interval
        self.pending: tuple[float, str | None] | None = None

    def offer(self, progress: float, message: str | None) -> None:
        self.pending = (progress, message)
        if time.monotonic() - self.last_sent >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            progress, message = self.pending
            self.pending = None
            self.last_sent = time.monotonic()
            self.report(progress, message)


class CommandIO:
    """The running command's three pipes (see the module's docstring)."""

    def __init__(self, process: subprocess.Popen[bytes], feed: bytes, report: Report) -> None:
        self.stdout = bytearray()
        self.stderr_tail: deque[bytes] = deque(maxlen=TAIL_LINES)
        self.throttle = Throttle(report)
        assert process.stdin and process.stdout and process.stderr
        self.threads = [threading.Thread(target=target, args=args, daemon=True)
                        for target, args in ((self._feed, (process.stdin, feed)),
                                             (self._keep, (process.stdout,)),
                                             (self._scan, (process.stderr,)))]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _feed(pipe: IO[bytes], feed: bytes) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):  # a command may not read it all
            pipe.write(feed)
        with contextlib.suppress(BrokenPipeError, OSError):
            pipe.close()

    def _keep(self, pipe: IO[bytes]) -> None:
        while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
            self.stdout += chunk

    def _scan(self, pipe: IO[bytes]) -> None:
        for line in pipe:
            progress = parse_progress(line)
            if progress is None:
                self.stderr_tail.append(line)
            else:
                self.throttle.offer(*progress)

    def finish(self) -> tuple[bytes, bytes]:
        """Once the command ended: its stdout and its stderr less the progress lines (the
        last progress held back by the throttle is sent now)."""
        for thread in self.threads:
            thread.join()
        self.throttle.flush()
        return bytes(self.stdout), b"".join(self.stderr_tail)
