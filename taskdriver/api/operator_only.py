"""Operator-only views: the mark a view carries, and the lookup the request check reads.

An agent asking for an operator-only action is refused (403) before its body is parsed,
so a bad body never hides the refusal (`http.py` runs the check ahead of every body rule).
The mark sits on the view itself, so renaming or moving a view keeps it. The service
checks again: the mark decides only how early the refusal comes, not whether it comes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

View = TypeVar("View", bound=Callable[..., Any])

ACTION_ATTRIBUTE = "operator_only_action"


def operator_only(action: str) -> Callable[[View], View]:
    """Mark a view function, or a method of a MethodView, as for operators only.

    `action` ends the refusal's message: "Only operators may <action>".
    """
    def mark(view: View) -> View:
        setattr(view, ACTION_ATTRIBUTE, action)
        return view

    return mark


def operator_action(view: Callable[..., Any] | None, method: str) -> str | None:
    """What a registered view (Flask's `view_functions` entry) reserves to operators when
    called with `method`, or None when agents may call it too."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:  # a MethodView: the mark is on its method's function
        view = getattr(view_class, method.lower(), None)
    return getattr(view, ACTION_ATTRIBUTE, None)
