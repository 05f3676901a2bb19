"""`mail-gateway imap status`: IMAP folders and forwarding confirmations, nothing cut short.

`mail-gateway status` shows the same data under its `imap` and `forwarding_confirmations`
keys, but its text form shortens long values; an admin finishing a forwarding set-up needs the
whole confirmation link, so this command prints it in full.
"""

from __future__ import annotations

import click

from gateway.cli.common import Context, friendly_errors, pass_ctx
from gateway.cli.output import emit_json, emit_table, output_options


@click.group("imap")
def imap_command() -> None:
    """IMAP intake: folder progress and forwarding confirmations."""


@imap_command.command("status")
@output_options
@pass_ctx
@friendly_errors
def imap_status(ctx: Context, as_json: bool) -> None:
    """Each folder's state and progress; forwarding confirmations with code and full link."""
    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store import imap_state

    folders = imap_state.imap_status(db)
    confirmations = imap_state.forwarding_confirmations(db)
    if as_json:
        emit_json({"imap": folders, "forwarding_confirmations": confirmations})
        return
    rows = [
        {
            "folder": name,
            **{k: v for k, v in f.items() if k != "skipped"},
            "skipped": len(f["skipped"]),
        }
        for name, f in folders.items()
    ]
    if not ctx.settings.imap:
        empty = f"no IMAP accounts are configured (add an [[imap]] table to {ctx.config_path})"
    else:
        empty = "no IMAP folders read yet (the daemon reads them once it runs)"
    emit_table(rows, ["folder", "state", "done", "total", "last_uid", "skipped", "error"], empty)
    for c in confirmations:
        click.echo()
        click.echo(
            f"forwarding confirmation for {c['mailbox']} ({c['provider']}, {c['received_at']})"
        )
        click.echo(f"  code: {c['code'] or '-'}")
        click.echo(f"  link: {c['link'] or '-'}")


COMMANDS = (imap_command,)
