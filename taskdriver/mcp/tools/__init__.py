"""Every tool, by noun. Names and arguments are the original TaskDriver MCP server's
(HamStudy/taskdriver-mcp), with the REST reference's spellings as the canonical ones."""

from __future__ import annotations

from typing import Any

from ..registry import ToolSpec
from . import operations, projects, queue, task_types, tasks


def all_tools() -> list[ToolSpec[Any]]:
    """Every tool, in the order a reader meets the nouns."""
    return [spec for module in (projects, task_types, tasks, queue, operations)
            for spec in module.tools.specs]
