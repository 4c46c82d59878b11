"""How the dashboard writes times, leases and tasks for people: "3 min ago" with the exact
UTC time on hover, the first line of a task's instructions, a lease that ran out shown as
stale. Rendered on the server; `static/relative-time.js` only keeps the words current."""

from __future__ import annotations

from markupsafe import Markup

from .. import rules
from ..extension import services
from ..models import Task
from ..times import rfc3339
from .blueprint import blp

GIST_CHARS = 60
JUST_NOW_SECONDS = 5
UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def relative(seconds_ago: float) -> str:
    """'just now', '3 min ago', 'in 2 h': the largest whole unit (JavaScript's twin in
    static/relative-time.js says the same)."""
    span = abs(seconds_ago)
    if span < JUST_NOW_SECONDS:
        return "just now"
    size, unit = next((size, unit) for size, unit in UNITS if span >= size)
    amount = f"{int(span // size)} {unit}"
    return f"in {amount}" if seconds_ago < 0 else f"{amount} ago"


@blp.app_template_filter("when")
def when(moment: float | None) -> Markup | str:
    """A moment as relative words, with the exact UTC time in the title (hover)."""
    if moment is None:
        return "—"
    exact = rfc3339(moment)
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(
        exact, relative(services().driver.now() - moment))


@blp.app_template_test("stale")
def stale(task: Task) -> bool:
    """A running task whose lease ran out and that no reaper has reclaimed yet."""
    return rules.lease_expired(task, services().driver.now())


@blp.app_template_filter("gist")
def gist(text: str, width: int = GIST_CHARS) -> str:
    """The first non-blank line of `text`, cut to `width` characters with an ellipsis."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[:width - 1].rstrip() + "…"
