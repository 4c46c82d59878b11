"""The `taskdriver` command: a client of a running TaskDriver server, over HTTP only.

    taskdriver [--url URL] [--token TOKEN] new-project|new-type|submit|work|status|export|
               tasks|retry|cancel|pause|resume|mcp …

Connection from `--url`/`--token`/`--agent-key` (before or after the subcommand's name) or
TASKDRIVER_URL/TASKDRIVER_TOKEN/TASKDRIVER_AGENT_KEY; an agent identity from `--project` and
`--agent`. Machine output goes to stdout, messages and progress to stderr; a refusal prints
one line with the server's message and correlationId and exits 1, never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from ..client import DEFAULT_URL, ApiError, Client, check_url


class Connection:
    """Where the server is and who we are to it; makes clients for the subcommands."""

    def __init__(self, url: str, token: str | None, agent_key: str | None) -> None:
        self.url = url
        self.token = token
        self.agent_key = agent_key

    def operator(self) -> Client:
        """A client with the given token (an operator's, usually)."""
        return Client(self.url, self.token)

    def agent(self, project: str, agent_name: str, **options: Any) -> Client:
        """A client that logs in as `agent_name` in `project` (`options` as Client's)."""
        return Client(self.url, agent_name=agent_name, project=project,
                      agent_key=self.agent_key, **options)


class _Group(click.Group):
    """Every subcommand's ApiError becomes one `Error: …` line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            raise click.ClickException(exc.describe()) from None


def _checked_url(url: str) -> str:
    try:
        return check_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None


def _override(attribute: str) -> Any:
    """A subcommand's connection option: when given after the subcommand's name, it wins
    over the group's (so `taskdriver work --url X …` means what it says)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            connection = ctx.find_object(Connection)
            assert connection is not None  # the group's callback ran before this parse
            setattr(connection, attribute, _checked_url(value) if attribute == "url"
                    else value)

    return callback


CONNECTION_OPTIONS = (
    ("--url", "url", "The TaskDriver server's root URL (TASKDRIVER_URL)."),
    ("--token", "token", "A bearer token, usually an operator's (TASKDRIVER_TOKEN)."),
    ("--agent-key", "agent_key",
     "The agent key, when the server requires one (TASKDRIVER_AGENT_KEY)."),
)


def _with_connection_options(command: click.Command) -> click.Command:
    """Let every subcommand take the connection options too, after its name."""
    for flag, attribute, help_text in CONNECTION_OPTIONS:
        command.params.append(click.Option([flag], default=None, expose_value=False,
                                           callback=_override(attribute), help=help_text))
    return command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="TASKDRIVER_URL", default=DEFAULT_URL, show_default=True,
              help="The TaskDriver server's root URL (TASKDRIVER_URL).")
@click.option("--token", envvar="TASKDRIVER_TOKEN", default=None,
              help="A bearer token, usually an operator's (TASKDRIVER_TOKEN).")
@click.option("--agent-key", envvar="TASKDRIVER_AGENT_KEY", default=None,
              help="The agent key, when the server requires one (TASKDRIVER_AGENT_KEY).")
@click.pass_context
def main(ctx: click.Context, url: str, token: str | None, agent_key: str | None) -> None:
    """Work a TaskDriver queue, load it, export it, and watch it. The connection options
    may also follow the subcommand's name."""
    ctx.obj = Connection(_checked_url(url), token, agent_key)


def _register() -> None:
    from . import controls, create, export, mcp, status, submit, tasks, work

    for command in (create.new_project, create.new_type, submit.command, work.command,
                    status.command, tasks.list_command, tasks.retry_command,
                    controls.cancel_command, controls.pause_command, controls.resume_command,
                    export.command, mcp.command):
        main.add_command(_with_connection_options(command))


_register()
