"""`mail-gateway signatures which ADDRESS` and `mail-gateway outbox list|show`."""

from __future__ import annotations

import dataclasses

import click

from gateway.cli.common import Context, friendly_errors, pass_ctx
from gateway.cli.output import emit_json, emit_pairs, emit_table, output_options


@click.group()
def signatures() -> None:
    """Reply signatures chosen by the sender's email domain."""


@signatures.command("which")
@click.argument("address")
@output_options
@pass_ctx
@friendly_errors
def signatures_which(ctx: Context, address: str, as_json: bool) -> None:
    """Which signature a reply sent by ADDRESS carries, and why (exact/wildcard/default)."""
    from gateway.mail.signatures import choose_signature

    sig = choose_signature(address, ctx.settings.signatures)
    data = {"address": address, "why": sig.why, "text": sig.text, "html": sig.html}
    if as_json:
        emit_json(data)
        return
    click.echo(f"{address}: {sig.why}")
    click.echo(sig.text or "(empty signature)")


@click.group()
def outbox() -> None:
    """Outgoing mail kept by [relay] mode = "capture"."""


@outbox.command("list")
@output_options
@pass_ctx
@friendly_errors
def outbox_list(ctx: Context, as_json: bool) -> None:
    """Captured mails, oldest first."""
    from gateway.relay.outbox import capture_dir, list_outbox

    folder = capture_dir(ctx.settings)
    rows = [
        {k: str(v) if k == "path" else v for k, v in dataclasses.asdict(e).items()}
        for e in list_outbox(folder)
    ]
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["id", "to", "subject", "size"], f"outbox {folder} is empty")


@outbox.command("show")
@click.argument("entry_id", metavar="ID")
@click.option("--headers", "headers_only", is_flag=True, help="Only the summary, not the mail.")
@pass_ctx
@friendly_errors
def outbox_show(ctx: Context, entry_id: str, headers_only: bool) -> None:
    """Print one captured mail as sent (ID from `outbox list`)."""
    from gateway.relay.outbox import capture_dir, list_outbox, read_outbox

    folder = capture_dir(ctx.settings)
    raw = read_outbox(folder, entry_id)
    if headers_only:
        entry = next(e for e in list_outbox(folder) if e.id == entry_id.removesuffix(".eml"))
        emit_pairs({k: v for k, v in dataclasses.asdict(entry).items() if k != "path"})
        return
    click.echo(raw.decode("utf-8", "replace").replace("\r\n", "\n"), nl=False)


COMMANDS = (signatures, outbox)
