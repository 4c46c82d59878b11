"""The `taskdriver` command: a client of a running TaskDriver server, over HTTP only.

    taskdriver [--url URL] [--token TOKEN] new-project|new-type|submit|work|status|export|mcp …

Connection from `--url`/`--token` or TASKDRIVER_URL/TASKDRIVER_TOKEN; an agent identity from
`--project` and `--agent` (and TASKDRIVER_AGENT_KEY when the server asks for one). Machine
output goes to stdout, messages and progress to stderr; a refusal prints one line with the
server's message and correlationId and exits 1, never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from ..client import DEFAULT_URL, ApiError, Client


class Connection:
    """Where the server is and who we are to it; makes clients for the subcommands."""

    def __init__(self, url: str, token: str | None, agent_key: str | None) -> None:
        self.url = url
        self.token = token
        self.agent_key = agent_key

    def operator(self) -> Client:
        """A client with the given token (an operator's, usually)."""
        return Client(self.url, self.token)

    def agent(self, project: str, agent_name: str) -> Client:
        """A client that logs in as `agent_name` in `project`."""
        return Client(self.url, agent_name=agent_name, project=project,
                      agent_key=self.agent_key)


class _Group(click.Group):
    """Every subcommand's ApiError becomes one `Error: …` line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            raise click.ClickException(exc.describe()) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="TASKDRIVER_URL", default=DEFAULT_URL, show_default=True,
              help="The TaskDriver server (TASKDRIVER_URL).")
@click.option("--token", envvar="TASKDRIVER_TOKEN", default=None,
              help="A bearer token, usually an operator's (TASKDRIVER_TOKEN).")
@click.option("--agent-key", envvar="TASKDRIVER_AGENT_KEY", default=None,
              help="The agent key, when the server requires one (TASKDRIVER_AGENT_KEY).")
@click.pass_context
def main(ctx: click.Context, url: str, token: str | None, agent_key: str | None) -> None:
    """Work a TaskDriver queue, load it, export it, and watch it."""
    ctx.obj = Connection(url, token, agent_key)


def _register() -> None:
    from . import create, export, mcp, status, submit, work

    for command in (create.new_project, create.new_type, submit.command, work.command,
                    status.command, export.command, mcp.command):
        main.add_command(command)


_register()
