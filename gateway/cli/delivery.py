"""`mail-gateway signatures which ADDRESS` and `mail-gateway outbox list|show`."""

from __future__ import annotations

import dataclasses
from typing import Any

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
    """Print one captured mail as sent (ID from `outbox list`, or any unique start of it)."""
    from gateway.relay.outbox import capture_dir, list_outbox, read_outbox

    folder = capture_dir(ctx.settings)
    entry = _unique(list_outbox(folder), entry_id.removesuffix(".eml"), folder)
    raw = read_outbox(folder, entry.id)
    if headers_only:
        emit_pairs({k: v for k, v in dataclasses.asdict(entry).items() if k != "path"})
        return
    click.echo(raw.decode("utf-8", "replace").replace("\r\n", "\n"), nl=False)


def _unique(entries: list, prefix: str, folder) -> Any:
    """The one entry whose id is `prefix` or starts with it; a ClickException otherwise."""
    exact = [e for e in entries if e.id == prefix]
    found = exact or [e for e in entries if prefix and e.id.startswith(prefix)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise click.ClickException(f"outbox: no captured mail {prefix!r} in {folder}")
    ids = ", ".join(e.id for e in found[:3]) + (", …" if len(found) > 3 else "")
    raise click.ClickException(
        f"outbox: {len(found)} captured mails start with {prefix!r} ({ids}); give more of the id"
    )


COMMANDS = (signatures, outbox)
