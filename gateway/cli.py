"""`mail-gateway`: the click group, settings loading and the error-to-exit-code mapping.

Library code raises GatewayError subclasses; only here do they become one readable line and
a non-zero exit code, never a traceback. Command families live in cli_*.py.
"""

from __future__ import annotations

import asyncio

import click

from gateway.cli_common import Context, friendly_errors, pass_ctx
from gateway.cli_output import emit_json, emit_pairs, emit_table, output_options
from gateway.config import default_config_path, redacted
from gateway.logs import setup_logging
from gateway.store import jobs as jobq
from gateway.store import queries


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


@cli.command()
@pass_ctx
@friendly_errors
def serve(ctx: Context) -> None:
    """Run the daemon (SMTP intake, HTTP, worker) until SIGTERM or SIGINT."""
    from gateway.service import serve as run_service

    s = ctx.settings
    setup_logging(s.gateway.log_level, s.gateway.log_format)
    asyncio.run(run_service(s))


@cli.command()
@output_options
@pass_ctx
@friendly_errors
def status(ctx: Context, as_json: bool) -> None:
    """Mails accepted today, conversations, queue depth, quarantine, last mail."""
    data = queries.status(ctx.db())
    if as_json:
        emit_json(data)
    else:
        emit_pairs(data)


@cli.group()
def config() -> None:
    """Check or show the configuration."""


@config.command("check")
@pass_ctx
@friendly_errors
def config_check(ctx: Context) -> None:
    """Validate the configuration file; one line per problem."""
    s = ctx.settings
    click.echo(f"{s.source}: ok")


@config.command("show")
@output_options
@pass_ctx
@friendly_errors
def config_show(ctx: Context, as_json: bool) -> None:
    """Print the effective settings, secrets redacted."""
    data = redacted(ctx.settings)
    if as_json:
        emit_json(data)
    else:
        for section, values in data.items():
            click.echo(f"[{section}]")
            for k, v in values.items():
                click.echo(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
            click.echo()


@cli.group()
def sessions() -> None:
    """Conversations (sessions) and their transcripts."""


@sessions.command("list")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@click.option(
    "--status", "status_", type=click.Choice(["open", "handed_off", "closed"]), default=None
)
@output_options
@pass_ctx
@friendly_errors
def sessions_list(ctx: Context, limit: int, status_: str | None, as_json: bool) -> None:
    """List conversations, most recent activity first."""
    rows = queries.list_sessions(ctx.db(), limit=limit, status=status_)
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
    data = queries.show_session(ctx.db(), session_id)
    if as_json:
        emit_json(data)
        return
    head = {k: v for k, v in data.items() if k not in ("messages", "participants", "hubspot")}
    emit_pairs(head)
    if data["hubspot"]:
        emit_pairs({"hubspot": {k: v for k, v in data["hubspot"].items() if v is not None}})
    click.echo(
        "participants: " + ", ".join(f"{p['email']} ({p['role']})" for p in data["participants"])
    )
    for m in data["messages"]:
        click.echo()
        arrow = "<-" if m["direction"] == "in" else "->"
        who = f"{m['sender_name']} <{m['sender']}>" if m["sender_name"] else m["sender"]
        click.echo(f"{arrow} {m['time']}  {who}")
        click.echo(f"   subject: {m['subject']}")
        if m["annotations"]:
            click.echo(f"   annotations: {', '.join(m['annotations'])}")
        for a in m["attachments"]:
            click.echo(f"   attachment: {a['filename']} ({a['content_type']}, {a['size']} bytes)")
        for line in (m["new_text"] or "").strip().splitlines() or ["(no text)"]:
            click.echo(f"   | {line}")


@cli.command()
@click.argument("session_id", type=int)
@click.option("--reason", default="handed off by a person", show_default=True)
@pass_ctx
@friendly_errors
def handoff(ctx: Context, session_id: int, reason: str) -> None:
    """Hand a conversation to HubSpot now (the running daemon does the work)."""
    from gateway.store.hubspot import request_handoff

    db = ctx.db()
    with db.atomic():
        new = request_handoff(db, session_id, reason=reason, trigger="person")
    if new:
        click.echo(f"session {session_id}: handoff queued ({reason})")
    else:
        click.echo(f"session {session_id}: already handed off or queued")


@cli.command()
@click.argument("job_ids", type=int, nargs=-1)
@output_options
@pass_ctx
@friendly_errors
def retry(ctx: Context, job_ids: tuple[int, ...], as_json: bool) -> None:
    """Run dead letters again: all of them, or the given job ids."""
    db = ctx.db()
    dead = queries.dead_letters(db)
    if as_json and not job_ids:
        emit_json(dead)
    with db.atomic():
        n = jobq.revive(db, list(job_ids) or None)
    if not as_json:
        click.echo(f"{n} dead job(s) queued again")


@cli.group()
def quarantine() -> None:
    """Mails whose processing failed: list them, retry them after a fix."""


@quarantine.command("list")
@click.option("--all", "include_retried", is_flag=True, help="Include entries already retried.")
@output_options
@pass_ctx
@friendly_errors
def quarantine_list(ctx: Context, include_retried: bool, as_json: bool) -> None:
    """Quarantined mails with their error."""
    rows = queries.list_quarantine(ctx.db(), include_retried=include_retried)
    if as_json:
        emit_json(rows)
        return
    emit_table(
        rows, ["id", "raw_id", "created_at", "envelope_from", "error"], "quarantine is empty"
    )


@quarantine.command("retry")
@click.argument("quarantine_id", type=int)
@pass_ctx
@friendly_errors
def quarantine_retry(ctx: Context, quarantine_id: int) -> None:
    """Process a quarantined mail again (the running daemon picks it up)."""
    db = ctx.db()
    with db.atomic():
        job_id = queries.retry_quarantined(db, quarantine_id)
    click.echo(f"quarantine {quarantine_id}: queued again as job {job_id}")


def _register_optional() -> None:
    """Commands that live in their own modules."""
    from gateway.cli_sandbox import sandbox_command

    cli.add_command(sandbox_command)
    from gateway.cli_delivery import COMMANDS as delivery_commands  # signatures, outbox

    for command in delivery_commands:
        cli.add_command(command)
    from gateway.cli_imap import imap_command

    cli.add_command(imap_command)
    from gateway.cli_ops import COMMANDS as ops_commands  # doctor

    for command in ops_commands:
        cli.add_command(command)
    from gateway.cli_hubspot import hubspot

    cli.add_command(hubspot)


_register_optional()


def main() -> None:
    cli(prog_name="mail-gateway")


if __name__ == "__main__":
    main()
