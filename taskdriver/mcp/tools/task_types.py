"""Task type tools: templates with {{variables}} and the queue rules of their tasks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ...client import Client
from .. import results
from ..registry import ADDS, JSON_TEXT, OVERWRITES, READS, Arguments, Tools
from .common import Limit, Offset, ProjectRef, TypeRef

tools = Tools()


class RateLimit(Arguments):
    count: int = Field(ge=0, le=100_000, description="Leases that may begin (0: no limit).")
    perSeconds: int = Field(1, ge=1, le=86_400, description="In any interval this long.")


class TypeRules(Arguments):
    """What a task type sets for its tasks; every field optional (the server's defaults)."""

    template: str | None = Field(None, description="The instructions of its tasks, with "
                                                   "{{variable}} placeholders.")
    variables: list[str] | None = Field(None, description="The template's variable names.")
    duplicateHandling: Literal["allow", "ignore", "fail"] | None = Field(
        None, description="A task with the same variables as an existing one: allow it, "
                          "ignore it (return the existing task), or fail with 409.")
    maxRetries: int | None = Field(None, ge=0, description="Retries after a failure.")
    leaseDurationMinutes: float | None = Field(None, gt=0, description="Lease length in "
                                                                       "minutes.")
    priority: int | None = Field(None, description="Default priority of its tasks (higher "
                                                   "is leased first).")
    retryDelaySeconds: float | None = Field(None, ge=0, description="Wait before a retry "
                                                                    "(0: at once).")
    retryBackoff: Literal["fixed", "exponential"] | None = Field(
        None, description="fixed, or exponential (the wait doubles each retry).")
    maxRetryDelaySeconds: float | None = Field(None, ge=0, description="Cap of the wait.")
    maxConcurrent: int | None = Field(None, ge=0, le=100_000, description=(
        "At most this many of its tasks running at once, across every agent (0: no limit)."))
    rateLimit: Annotated[RateLimit | None, JSON_TEXT] = Field(None, description=(
        "At most count leases of its tasks begin in any perSeconds seconds (count 0: no "
        "limit)."))
    paused: bool | None = Field(None, description="true: hand out none of its tasks until "
                                                  "set false again.")

    def rules(self) -> dict[str, Any]:
        """The given rules as the API's body fields (a 0 limit: none, the API's null)."""
        rules = self.model_dump(include=set(TypeRules.model_fields), exclude_none=True)
        if rules.get("maxConcurrent") == 0:
            rules["maxConcurrent"] = None
        if self.rateLimit is not None and self.rateLimit.count == 0:
            rules["rateLimit"] = None
        return rules


class CreateTaskType(TypeRules):
    projectId: ProjectRef
    name: str = Field(description="The type's name, unique in the project.")


@tools.tool(CreateTaskType, results.TaskType, ADDS)
def create_task_type(client: Client, args: CreateTaskType) -> Any:
    """Create a task type: a prompt template with {{variables}} and its queue rules
    (default priority of its tasks; wait before a retry, fixed or doubling, capped; how
    many may run at once, how fast leases may begin)."""
    return client.create_task_type(args.projectId, args.name, **args.rules())


class ListTaskTypes(Arguments):
    projectId: ProjectRef
    limit: Limit = 100
    offset: Offset = 0


@tools.tool(ListTaskTypes, results.TaskTypePage, READS)
def list_task_types(client: Client, args: ListTaskTypes) -> Any:
    """A project's task types, oldest first."""
    return client.list_task_types(args.projectId, args.limit, args.offset)


class GetTaskType(Arguments):
    typeId: TypeRef
    projectId: str | None = Field(None, description="The project, to name the type "
                                                           "by its name instead of its id.")


@tools.tool(GetTaskType, results.TaskType, READS)
def get_task_type(client: Client, args: GetTaskType) -> Any:
    """A task type with its template, variables and rules."""
    type_id = (client.task_type_id(args.projectId, args.typeId) if args.projectId
               else args.typeId)
    return client.get_task_type(type_id)


class UpdateTaskType(TypeRules):
    projectId: ProjectRef
    typeId: TypeRef
    name: str | None = Field(None, description="A new name, unique in the project.")


@tools.tool(UpdateTaskType, results.TaskType, OVERWRITES)
def update_task_type(client: Client, args: UpdateTaskType) -> Any:
    """Change a task type (named by id or name in the project); tasks keep theirs.
    paused true stops handing out its tasks, false resumes at once."""
    fields = args.rules() | ({"name": args.name} if args.name else {})
    return client.update_task_type(client.task_type_id(args.projectId, args.typeId), **fields)
