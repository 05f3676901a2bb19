"""The root `mail-gateway` group (`--config`, `--version`) and the loop that adds every family.

Each family module (ops, sessions, recovery, delivery, hubspot, imap, mailbox, sandbox) exposes its
top-level commands as `COMMANDS`; adding a family is one entry in `FAMILIES`. There is no
other way a command gets registered.
"""

from __future__ import annotations

import click

from gateway.cli import delivery, hubspot, imap, mailbox, ops, recovery, sandbox, sessions
from gateway.cli.common import Context
from gateway.config import default_config_path

FAMILIES = (ops, sessions, recovery, delivery, hubspot, imap, mailbox, sandbox)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
