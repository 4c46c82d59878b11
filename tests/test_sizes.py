"""Small rooms: no module of the package over 400 lines, no class over 300, no function
over 150 (issue 20), measured on the source (ast), so a reader takes each in at a glance."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "taskdriver"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 150



def oversized(path: Path, root: Path = ROOT) -> list[str]:
    """What in `path` is over its limit, one line each."""
    source = path.read_text()
    where = path.relative_to(root).as_posix()
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{where}: {lines} lines (max {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.ClassDef):
            limit = MAX_CLASS_LINES
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            limit = MAX_FUNCTION_LINES
        else:
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        length = (node.end_lineno or node.lineno) - first + 1
        if length > limit:
            found.append(f"{where}: {node.name} is {length} lines (max {limit})")
    return found


def test_no_room_is_too_large() -> None:
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) > 50  # the walk found the package
    too_large = [line for path in paths for line in oversized(path)]
    assert too_large == []


def test_the_check_sees_what_is_too_large(tmp_path: Path) -> None:
    """A planted module over every limit is named for each (the check can fail)."""
    statements = "".join(f"        x{n} = {n}\n" for n in range(MAX_CLASS_LINES))
    planted = tmp_path / "taskdriver" / "big.py"
    planted.parent.mkdir()
    planted.write_text(f"class Big:\n    def method(self) -> None:\n{statements}"
                       + "\n" * MAX_MODULE_LINES)
    assert oversized(planted, tmp_path) == [
        f"taskdriver/big.py: {MAX_CLASS_LINES + 2 + MAX_MODULE_LINES} lines (max 400)",
        f"taskdriver/big.py: Big is {MAX_CLASS_LINES + 2} lines (max 300)",
        f"taskdriver/big.py: method is {MAX_CLASS_LINES + 1} lines (max 150)"]
