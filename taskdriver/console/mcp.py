"""`taskdriver mcp`: the MCP server for LLM clients (stdio, or streamable HTTP)."""

from __future__ import annotations

import click

from . import Connection


@click.command("mcp")
@click.option("--project", "-p", default=None, help="Work as an agent in this project "
                                                    "(with --agent).")
@click.option("--agent", "-a", default=None, help="Agent name to log in as (with --project).")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio",
              show_default=True, help="stdio for a local MCP host; http for streamable HTTP.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="With --transport http: the address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535),
              help="With --transport http: the port to listen on.")
@click.pass_obj
def command(connection: Connection, project: str | None, agent: str | None, transport: str,
            host: str, port: int) -> None:
    """Serve TaskDriver's tools and prompts to an MCP host (Claude Code, Claude Desktop…).

    With an operator token (--token / TASKDRIVER_TOKEN) every tool is available; with
    --project and --agent it logs in as that agent, and the server's scoping applies."""
    from ..mcp_tools import build_server  # the MCP SDK loads only for this command

    if (project is None) != (agent is None):
        raise click.UsageError("--project and --agent go together")
    client = connection.agent(project, agent) if project and agent else connection.operator()
    server = build_server(client)
    if transport == "stdio":
        server.run("stdio")
    else:
        click.echo(f"MCP over streamable HTTP on http://{host}:{port}/mcp", err=True)
        server.run("streamable-http", host=host, port=port)
