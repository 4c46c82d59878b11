"""The MCP server: TaskDriver's tools and prompts over the SDK's low-level `Server`.

The low-level server is used (not the decorator-based `MCPServer`) because the tools need
what the decorators do not give: arguments checked against a model that refuses unknown
names and reports one line per problem, and an `outputSchema` taken from the client's
result types. Tool calls run in a worker thread, as the client is synchronous.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp import MCPError
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp_types import INVALID_PARAMS

from .. import __version__
from ..client import Client
from .prompts import PROMPTS
from .tools import all_tools

INSTRUCTIONS = (
    "TaskDriver hands out work to LLM agents. To work: call get_next_task with your project "
    "and agent name, follow the project's instructions and the task's, then call "
    "complete_task with your result (or fail_task with the error, canRetry true if another "
    "try may succeed). For long work call extend_lease before the lease runs out. Operators "
    "create projects, task types (templates with {{variables}}) and tasks, and watch "
    "get_project_stats.")

CONNECT_TIMEOUT_SECONDS = 1.5
"""An LLM host waits on each tool call: a server that does not accept the connection in
this long is reported at once (with one quick retry, worst case about 4 s in all)."""
RETRIES = 1
READ_TIMEOUT_SECONDS = 30.0


def mcp_client(url: str, token: str | None, agent_name: str | None = None,
               project: str | None = None, agent_key: str | None = None) -> Client:
    """A client that fails fast: an operator's (with `token`) or an agent's that logs in."""
    return Client(url, token, agent_name=agent_name, project=project, agent_key=agent_key,
                  timeout=READ_TIMEOUT_SECONDS, retries=RETRIES,
                  connect_timeout=CONNECT_TIMEOUT_SECONDS)


def build_server(client: Client) -> Server[Any]:
    """The MCP server with every tool and prompt, each a call through `client`."""
    tools = {spec.name: spec for spec in all_tools()}
    listing = types.ListToolsResult(tools=[spec.listing() for spec in tools.values()])
    prompts = {prompt.name: prompt for prompt in PROMPTS}

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return listing

    async def call_tool(ctx: Any, params: types.CallToolRequestParams
                        ) -> types.CallToolResult:
        spec = tools.get(params.name)
        if spec is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
        return await anyio.to_thread.run_sync(spec.call, client, params.arguments or {})

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[p.listing() for p in prompts.values()])

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams
                         ) -> types.GetPromptResult:
        prompt = prompts.get(params.name)
        if prompt is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {params.name}")
        return prompt.render(params.arguments)

    def input_schema(name: str) -> dict[str, Any] | None:
        return tools[name].input_schema if name in tools else None

    return Server("taskdriver", version=__version__, instructions=INSTRUCTIONS,
                  get_tool_input_schema=input_schema, on_list_tools=list_tools,
                  on_call_tool=call_tool, on_list_prompts=list_prompts,
                  on_get_prompt=get_prompt)


def serve_stdio(server: Server[Any]) -> None:
    """Serve one MCP host over this process's stdin and stdout until it closes them."""
    async def run() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    anyio.run(run)
