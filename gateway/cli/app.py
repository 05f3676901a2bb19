"""The root `mail-gateway` group (`--config`, `--version`) and the loop that adds every family.

Each family module (ops, sessions, recovery, delivery, hubspot, imap, mailbox, sandbox) exposes its
top-level commands as `COMMANDS`; adding a family is one entry in `FAMILIES`. There is no
other way a command gets registered.

Two habits of a Unix tool live here: a usage error is two lines (the error, then where the
help is), not click's four. (A reader that goes away, `mail-gateway sessions list | head`,
ends the command quietly with exit 1: click does that for EPIPE, and `friendly_errors` lets a
BrokenPipeError through to it.)
"""

from __future__ import annotations

import types
from typing import IO, Any

import click

from gateway.cli import (
    delivery,
    hubspot,
    imap,
    init,
    mailbox,
    ops,
    recovery,
    sandbox,
    sessions,
    testmail,
)
from gateway.cli.common import Context
from gateway.config import default_config_path

FAMILIES = (ops, sessions, recovery, delivery, hubspot, imap, mailbox, sandbox, init, testmail)


def _short_show(self: click.UsageError, file: IO[Any] | None = None) -> None:
    """`Error: <what>` and `Try '<command> -h' for help.`: the usage itself is one -h away."""
    click.echo(f"Error: {self.format_message()}", err=True)
    if self.ctx is not None:
        click.echo(f"Try '{self.ctx.command_path} -h' for help.", err=True)


def _shortened(exc: click.UsageError) -> click.UsageError:
    exc.show = types.MethodType(_short_show, exc)  # type: ignore[method-assign]
    return exc


class RootGroup(click.Group):
    """The root group: usage errors of every command below it are shown in two lines."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _shortened(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _shortened(exc) from None


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    default=default_config_path,
    show_default="$MAIL_GATEWAY_CONFIG or /etc/mail-gateway/config.toml",
    help="The TOML configuration file.",
)
@click.version_option(package_name="hubspot-mail-gateway")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """Support mail gateway: SMTP/IMAP intake, conversations, handoff to HubSpot."""
    ctx.obj = Context(config_path)


for _family in FAMILIES:
    for _command in _family.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="mail-gateway")
