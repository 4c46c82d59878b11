"""Prompt templates: `{{placeholder}}` discovery, rendering, and the duplicate key."""

from __future__ import annotations

import hashlib
import re

import orjson

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def placeholders(template: str | None) -> list[str]:
    """The distinct placeholder names of a template, in order of first appearance."""
    if not template:
        return []
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def render(template: str, variables: dict[str, str]) -> str:
    """Fill every placeholder; the caller has checked that each one has a value."""
    return PLACEHOLDER.sub(lambda match: variables[match.group(1)], template)


def duplicate_key(type_id: str, variables: dict[str, str]) -> str:
    """A digest equal for two tasks of one type whose variables are equal."""
    canonical = orjson.dumps([type_id, variables], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
