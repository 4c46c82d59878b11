"""The package's layers, read from every module's imports (ast, nothing imported): no
module reaches up or sideways into a layer it must not know (issue 20).

- storage knows nothing of the service, the API or the dashboard;
- the rules and the records (`rules.py`, `models.py`) know nothing of storage, the
  service, the API or the dashboard;
- the client side (client, console = the `taskdriver` command, MCP) speaks HTTP only and
  imports no server module;
- the operator CLI, the service and the dashboard do not go through the API.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "taskdriver"
CLIENT_SIDE = ("taskdriver.client", "taskdriver.console", "taskdriver.mcp")
ALLOWED_TO_CLIENT_SIDE = ("taskdriver",)  # the package root: `__version__`, nothing built

# (modules, the layers they must not import): a name is a module or everything under it.
FORBIDDEN: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("taskdriver.storage",),
     ("taskdriver.service", "taskdriver.api", "taskdriver.dashboard")),
    (("taskdriver.rules", "taskdriver.models"),
     ("taskdriver.storage", "taskdriver.service", "taskdriver.api", "taskdriver.dashboard")),
    (("taskdriver.server_cli", "taskdriver.service", "taskdriver.dashboard"),
     ("taskdriver.api",)),
]


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imported(path: Path) -> Iterator[str]:
    """Every module `path` imports (relative imports resolved; for `from x import y`, `x`
    and, when y is a module of the package, `x.y`), at any depth of the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names
                        if _is_module(f"{base}.{alias.name}"))


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def violations(path: Path) -> list[str]:
    """The imports of `path` that break a rule of this module's docstring."""
    name = _module_name(path)
    found = []
    for target in set(imported(path)):
        if not target.startswith("taskdriver"):
            continue
        if _within(name, CLIENT_SIDE) and not (
                _within(target, CLIENT_SIDE) or target in ALLOWED_TO_CLIENT_SIDE):
            found.append(f"{name} imports {target} (the client side imports no server module)")
        for sources, layers in FORBIDDEN:
            if _within(name, sources) and _within(target, layers):
                found.append(f"{name} imports {target}")
    return sorted(found)


def test_no_module_imports_up_or_sideways() -> None:
    assert len(modules()) > 50  # the walk found the package
    broken = [line for path in modules() for line in violations(path)]
    assert broken == []


@pytest.mark.parametrize(("source", "line", "expected"), [
    ("taskdriver/storage/file.py", "from ..service import TaskDriver",
     "taskdriver.storage.file imports taskdriver.service"),
    ("taskdriver/rules.py", "from .storage.base import Contention",
     "taskdriver.rules imports taskdriver.storage.base"),
    ("taskdriver/dashboard/views.py", "from ..api.errors import status_of",
     "taskdriver.dashboard.views imports taskdriver.api.errors"),
    ("taskdriver/service/queue.py", "from ..api import requests",
     "taskdriver.service.queue imports taskdriver.api.requests"),
    ("taskdriver/mcp/tools/queue.py", "from ... import models",
     "taskdriver.mcp.tools.queue imports taskdriver.models (the client side imports no "
     "server module)"),
    ("taskdriver/client/core.py", "import taskdriver.storage",
     "taskdriver.client.core imports taskdriver.storage (the client side imports no "
     "server module)"),
])
def test_the_check_sees_a_reach(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                                line: str, expected: str) -> None:
    """Each rule fails on a planted import (a copy of the module with one line more)."""
    planted = tmp_path / source
    planted.parent.mkdir(parents=True)
    planted.write_text((ROOT / source).read_text() + f"\n{line}\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert expected in violations(planted)
