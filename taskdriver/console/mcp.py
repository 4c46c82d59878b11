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
@click.option("--auth-token", envvar="TASKDRIVER_MCP_TOKEN", default=None,
              help="With --transport http: the bearer token MCP clients must send "
                   "(TASKDRIVER_MCP_TOKEN; default: the --token this command was given).")
@click.option("--allow-origin", "origins", multiple=True, metavar="ORIGIN",
              help="With --transport http: a browser Origin allowed besides this machine's "
                   "own (http://127.0.0.1:*, http://localhost:*); repeatable.")
@click.option("--allow-host", "hosts", multiple=True, metavar="NAME[:PORT]",
              help="With --transport http: a Host name clients use to reach this server, "
                   "besides the loopback names and --host; repeatable.")
@click.pass_obj
def command(connection: Connection, project: str | None, agent: str | None, transport: str,
            host: str, port: int, auth_token: str | None, origins: tuple[str, ...],
            hosts: tuple[str, ...]) -> None:
    """Serve TaskDriver's tools and prompts to an MCP host (Claude Code, Claude Desktop…).

    With an operator token (--token / TASKDRIVER_TOKEN) every tool is available; with
    --project and --agent it logs in as that agent, and the server's scoping applies. Over
    HTTP every request needs the bearer token (--auth-token, else the operator's token)."""
    from ..mcp import build_server, mcp_client, serve_stdio  # the MCP SDK loads only here
    from ..mcp.http import UnsafeBind, guard_for, serve_http

    if (project is None) != (agent is None):
        raise click.UsageError("--project and --agent go together")
    client = (mcp_client(connection.url, None, agent, project, connection.agent_key)
              if project and agent else mcp_client(connection.url, connection.token))
    server = build_server(client)
    if transport == "stdio":
        serve_stdio(server)
        return
    try:
        guard = guard_for(host, auth_token or connection.token, hosts, origins)
    except UnsafeBind as exc:
        raise click.UsageError(str(exc)) from None
    where = f"http://{host}:{port}/mcp"
    click.echo(f"MCP over streamable HTTP on {where}" + (
        ", bearer token required" if guard.token else
        " with no token: anything on this machine can call it (give --auth-token)"),
        err=True)
    serve_http(server, host, port, guard)
