"""Arguments that several tools take, each described and spelled once.

The canonical spellings are the REST reference's (`projectId`, `typeId`, `taskId`,
`batchId`, `agentName`, `extensionMinutes`); the original MCP server's other spellings of the
same thing (`taskTypeId`, `taskType`, `type`, `minutes`) are accepted too, so prompts
written for either keep working.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..registry import Arguments, spellings

ProjectRef = Annotated[str, Field(description="The project's id or its name.")]
_TYPE = Field(description="The task type's id or its name in the project (also accepted "
                          "as taskTypeId, taskType or type).",
              validation_alias=spellings("typeId", "taskTypeId", "taskType", "type"))
TypeRef = Annotated[str, _TYPE]
MaybeTypeRef = Annotated[str | None, _TYPE]
TaskRef = Annotated[str, Field(description="The task's id.")]
_BATCH = Field(description="A batch id: any label the tasks were created with.")
BatchRef = Annotated[str, _BATCH]
MaybeBatchRef = Annotated[str | None, _BATCH]
AgentName = Annotated[str | None, Field(
    description="The agent's name; defaults to the agent this MCP server logged in as.")]
ExtensionMinutes = Annotated[float, Field(
    gt=0, description="Minutes to add to the lease (also accepted as minutes).",
    validation_alias=spellings("extensionMinutes", "minutes"))]
Limit = Annotated[int, Field(ge=1, le=1000, description="At most this many items.")]
Offset = Annotated[int, Field(ge=0, description="Skip this many items first.")]
IgnoredProject = Annotated[str | None, Field(
    description="Not needed (the task id is enough); accepted for prompts written for the "
                "original server.")]


class OneProject(Arguments):
    projectId: ProjectRef
