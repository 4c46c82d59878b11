"""How a tool is declared, described and called.

A tool is a plain function `(client, arguments) -> result` with a pydantic model for its
arguments (every field described, unknown names refused, the reference's other spellings
accepted) and a client TypedDict for its result. `ToolSpec` turns that into what the MCP
specification (2025-06-18 and later) lists: an `inputSchema`, an `outputSchema`, and
annotations that say whether the tool only reads, overwrites, or may be repeated. `call`
runs one: arguments checked first, then the client call; a refusal of any kind comes back
as a tool error (`isError`) in one line per problem, never as an exception that ends the
session.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import mcp_types as types
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, ValidationError

from ..client import ApiError, Client
from .schema import object_schema

Args = TypeVar("Args", bound="Arguments")

READS = types.ToolAnnotations(read_only_hint=True, destructive_hint=False,
                              idempotent_hint=True, open_world_hint=False)
"""Reads only: list_*, get_*, stats and health."""
ADDS = types.ToolAnnotations(read_only_hint=False, destructive_hint=False,
                             idempotent_hint=False, open_world_hint=False)
"""Adds or moves work on; a repeat does it again (a second task, a second extension)."""
REPEATABLE = types.ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                   idempotent_hint=True, open_world_hint=False)
"""Changes state, but a repeat with the same arguments changes nothing more."""
OVERWRITES = types.ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                   idempotent_hint=True, open_world_hint=False)
"""Replaces stored fields with the given ones; the old values are gone."""
ENDS = types.ToolAnnotations(read_only_hint=False, destructive_hint=True,
                             idempotent_hint=True, open_world_hint=False)
"""Ends work for good (cancel); a repeat ends nothing more."""


class ToolRefusal(Exception):
    """A call the tool itself refuses before asking the server (the message says why)."""


class Arguments(BaseModel):
    """The base of every tool's arguments: an unknown name is an error, not dropped."""

    model_config = ConfigDict(extra="forbid")


def _json_text(value: Any) -> Any:
    """Objects and lists sent as JSON text (some hosts do) are parsed first."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError("must be JSON (an object or a list), not plain text") from None
    return value


JSON_TEXT = BeforeValidator(_json_text)
"""Marks an object or list argument that may also arrive as JSON text."""


def spellings(*names: str) -> AliasChoices:
    """Accept an argument under each of `names`; the first is the one the schema shows."""
    return AliasChoices(*names)


@dataclass(frozen=True)
class ToolSpec(Generic[Args]):
    """One tool: its name, what it does, its arguments, its result and its hints."""

    name: str
    description: str
    arguments: type[Args]
    result: Any  # a TypedDict: what structuredContent holds
    hints: types.ToolAnnotations
    run: Callable[[Client, Args], Any]
    input_schema: dict[str, Any] = field(init=False)
    output_schema: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_schema", _input_schema(self.arguments))
        object.__setattr__(self, "output_schema", object_schema(self.result))

    def listing(self) -> types.Tool:
        """The tool as `tools/list` shows it."""
        return types.Tool(name=self.name, description=self.description,
                          input_schema=self.input_schema, output_schema=self.output_schema,
                          annotations=self.hints)

    def call(self, client: Client, arguments: dict[str, Any]) -> types.CallToolResult:
        """Check the arguments, make the client call, and shape its answer or refusal."""
        try:
            parsed = self.arguments.model_validate(arguments)
        except ValidationError as exc:
            return refusal(f"Invalid arguments for {self.name}:\n"
                           + "\n".join(argument_problems(exc, self.input_schema)))
        try:
            result = self.run(client, parsed)
        except ApiError as exc:
            return refusal(describe_api_error(exc))
        except ToolRefusal as exc:
            return refusal(str(exc))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(result, ensure_ascii=False))],
            structured_content=result)


class Tools:
    """The tools of one noun, declared with `@tools.tool(...)` beside their arguments."""

    def __init__(self) -> None:
        self.specs: list[ToolSpec[Any]] = []

    def tool(self, arguments: type[Args], result: Any, hints: types.ToolAnnotations
             ) -> Callable[[Callable[[Client, Args], Any]], Callable[[Client, Args], Any]]:
        """Register the decorated function as a tool named after it, described by its
        docstring."""
        def register(run: Callable[[Client, Args], Any]) -> Callable[[Client, Args], Any]:
            description = " ".join((run.__doc__ or "").split())
            self.specs.append(ToolSpec(run.__name__, description, arguments, result, hints, run))
            return run
        return register


def refusal(message: str) -> types.CallToolResult:
    """A tool error: the model reads the message and can correct its call."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)],
                                is_error=True)


def describe_api_error(exc: ApiError) -> str:
    """The server's refusal: status, message, correlationId, then one line per field."""
    return exc.describe() + "".join(f"\n- {detail.get('field')}: {detail.get('message')}"
                                    for detail in exc.validation_details)


def argument_problems(exc: ValidationError, schema: dict[str, Any]) -> list[str]:
    """One line per wrong argument, in words (pydantic's own text carries links and input
    echoes meant for programmers)."""
    known = ", ".join(schema["properties"])
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        if error["type"] == "extra_forbidden":
            message = f"unknown argument (this tool takes: {known})"
        elif error["type"] == "missing":
            message = "required"
        elif error["type"] == "value_error":
            message = str(error["ctx"]["error"])
        else:
            message = error["msg"]
        lines.append(f"- {where}: {message}")
    return lines


def _input_schema(arguments: type[Arguments]) -> dict[str, Any]:
    """The arguments' JSON Schema without pydantic's generated titles ("Projectid"): each
    property says what it is in its description instead."""
    return _untitled(arguments.model_json_schema(by_alias=True))


def _untitled(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {key: ({name: _untitled(sub) for name, sub in value.items()}
                  if key in ("properties", "$defs") else _untitled(value))
            for key, value in schema.items() if key != "title"}
