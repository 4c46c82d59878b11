"""/api/docs really renders, offline, in a real browser (Debian's headless Chromium)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from live_server import ROOT, serving

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (scripts/install-test-deps installs it as "
           "root with apt-get)")]


def test_docs_render_the_operations_list_with_no_internet(tmp_path: Path) -> None:
    dom, png = tmp_path / "docs.html", tmp_path / "docs.png"
    with serving(tmp_path / "data", 1) as server:
        subprocess.run([str(ROOT / "scripts" / "render-docs"), f"{server.url}/api/docs",
                        str(dom), str(png)], check=True, timeout=120)
    html = dom.read_text()
    assert html.count('class="opblock-summary-path"') >= 30  # one per operation
    for path in ("/api/auth/login", "/api/agents/{agentName}/next-task",
                 "/api/projects/{projectId}/tasks/bulk", "/metrics/json"):
        assert f'data-path="{path}"' in html, path
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
