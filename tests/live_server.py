"""Run the real server under gunicorn on a free loopback port, for integration tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START_DEADLINE_SECONDS = 60.0  # a loaded 2-core machine can take many seconds to boot workers
HEALTH_REQUEST_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(data_dir: Path, workers: int, **env: str) -> Iterator[LiveServer]:
    """A started server, stopped (SIGTERM) when the block ends."""
    server = LiveServer(data_dir, workers, **env).start()
    try:
        yield server
    finally:
        server.stop()


class LiveServer:
    """gunicorn serving TaskDriver from a data directory; stopped with SIGTERM."""

    def __init__(self, data_dir: Path, workers: int = 3, own_metrics_dir: bool = True,
                 app: str = "wsgi:app", config: Path = ROOT / "gunicorn.conf.py",
                 **env: str) -> None:
        """`own_metrics_dir=False` leaves the metrics folder to gunicorn.conf.py, as `make run`;
        `app` is the WSGI app gunicorn serves, with the settings of `config`."""
        self.data_dir = data_dir
        self.app = app
        self.config = config
        self.own_metrics_dir = own_metrics_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TASKDRIVER_DATA_DIR": str(data_dir),
                    "TASKDRIVER_BIND": f"127.0.0.1:{self.port}",
                    "TASKDRIVER_WORKERS": str(workers), "TASKDRIVER_RATE_LIMIT": "off",
                    **env}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"gunicorn-{self.port}.log"

    def start(self) -> LiveServer:
        """Start (or restart, on the same port and data) and wait until /health answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.own_metrics_dir:
            metrics_dir = self.data_dir.parent / f"metrics-{self.port}"
            shutil.rmtree(metrics_dir, ignore_errors=True)  # a killed server leaves its files
            metrics_dir.mkdir()
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        else:
            self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "--config", str(self.config),
                 self.app], cwd=ROOT, env=self.env, stdout=log, stderr=log,
                start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.kill()  # a start that fails leaves no gunicorn behind
            raise
        return self

    def wait_ready(self, within: float = START_DEADLINE_SECONDS) -> None:
        """Poll /health until it answers 200; a busy machine may take seconds per answer."""
        assert self.process is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log()}")
            try:
                if requests.get(f"{self.url}/health",
                                timeout=HEALTH_REQUEST_TIMEOUT).status_code == 200:
                    return
            except requests.RequestException:
                pass  # not listening yet, or too busy to answer in time: ask again
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /health within {within:.0f} s: "
                           f"{self.log()}")

    @property
    def pid(self) -> int:
        """The gunicorn master's process id."""
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """`kill -9` the master and every worker at once, as a power cut would."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process is not None:
            # Workers orphaned by a killed master would outlive the test: end the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def cli(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run `flask --app taskdriver taskdriver …` against the same data directory."""
        return subprocess.run([str(BIN / "flask"), "--app", "taskdriver", "taskdriver", *args],
                              cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=60, **kwargs)
