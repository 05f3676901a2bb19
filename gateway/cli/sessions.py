"""Conversations: `sessions list|show` and `handoff` (hand one to HubSpot now)."""

from __future__ import annotations

import click

from gateway.cli.common import Context, daemon_pid, friendly_errors, pass_ctx
from gateway.cli.output import emit_json, emit_pairs, emit_table, output_options


@click.group()
def sessions() -> None:
    """Conversations (sessions) and their transcripts."""


@sessions.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many, newest first (at least 1).",
)
@click.option(
    "--status", "status_", type=click.Choice(["open", "handed_off", "closed"]), default=None
)
@output_options
@pass_ctx
@friendly_errors
def sessions_list(ctx: Context, limit: int, status_: str | None, as_json: bool) -> None:
    """List conversations, most recent activity first."""
    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store import queries

    rows = queries.list_sessions(db, limit=limit, status=status_)
    if as_json:
        emit_json(rows)
        return
    emit_table(
        rows,
        ["id", "status", "customer_email", "subject", "message_count", "last_message_at"],
        "no sessions yet",
    )


@sessions.command("show")
@click.argument("session_id", type=int)
@output_options
@pass_ctx
@friendly_errors
def sessions_show(ctx: Context, session_id: int, as_json: bool) -> None:
    """The transcript: time, direction, sender, subject, new text, annotations."""
    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store import queries

    data = queries.show_session(db, session_id)
    if as_json:
        emit_json(data)
        return
    head = {k: v for k, v in data.items() if k not in ("messages", "participants", "hubspot")}
    emit_pairs(head, width=None)  # one session: reasons and subjects in full
    if data["hubspot"]:
        hubspot = {k: v for k, v in data["hubspot"].items() if v is not None}
        emit_pairs({"hubspot": hubspot}, width=None)
    click.echo(
        "participants: " + ", ".join(f"{p['email']} ({p['role']})" for p in data["participants"])
    )
    for m in data["messages"]:
        click.echo()
        arrow = "<-" if m["direction"] == "in" else "->"
        who = f"{m['sender_name']} <{m['sender']}>" if m["sender_name"] else m["sender"]
        if "outside_sender" in m["annotations"]:
            who += "  [outside sender: not a participant]"
        click.echo(f"{arrow} {m['time']}  {who}")
        click.echo(f"   subject: {m['subject']}")
        if m["annotations"]:
            click.echo(f"   annotations: {', '.join(m['annotations'])}")
        for a in m["attachments"]:
            click.echo(f"   attachment: {a['filename']} ({a['content_type']}, {a['size']} bytes)")
        for line in (m["new_text"] or "").strip().splitlines() or ["(no text)"]:
            click.echo(f"   | {line}")


@click.command()
@click.argument("session_id", type=int)
@click.option("--reason", default="handed off by a person", show_default=True)
@pass_ctx
@friendly_errors
def handoff(ctx: Context, session_id: int, reason: str) -> None:
    """Hand a conversation to HubSpot now (the running daemon does the work)."""
    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store.db import write_transaction
    from gateway.store.hubspot import request_handoff

    with write_transaction(db):
        new = request_handoff(db, session_id, reason=reason, trigger="person")
    pid = daemon_pid(ctx.settings)
    if pid is None:
        when = "the daemon is not running: it hands it off once `mail-gateway serve` runs"
    else:
        when = f"the running daemon{f' (pid {pid})' if pid else ''} hands it off now"
    if new:
        click.echo(f"session {session_id}: handoff queued ({reason}); {when}")
    else:
        click.echo(f"session {session_id}: already handed off or queued")


COMMANDS = (sessions, handoff)
