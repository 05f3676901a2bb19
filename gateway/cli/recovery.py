"""Putting failed work back: `retry` (dead-letter jobs) and `quarantine list|retry` (mails)."""

from __future__ import annotations

import click

from gateway.cli.common import Context, friendly_errors, pass_ctx
from gateway.cli.output import emit_json, emit_table, output_options


@click.command()
@click.argument("job_ids", type=int, nargs=-1)
@output_options
@pass_ctx
@friendly_errors
def retry(ctx: Context, job_ids: tuple[int, ...], as_json: bool) -> None:
    """Run dead letters again: all of them, or the given job ids."""
    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store import jobs as jobq
    from gateway.store import queries
    from gateway.store.db import write_transaction

    dead = queries.dead_letters(db)
    if as_json and not job_ids:
        emit_json(dead)
    with write_transaction(db):
        n = jobq.revive(db, list(job_ids) or None)
    if not as_json:
        click.echo(f"{n} dead job(s) queued again")


@click.group()
def quarantine() -> None:
    """Mails whose processing failed: list them, retry them after a fix."""


@quarantine.command("list")
@click.option("--all", "include_retried", is_flag=True, help="Include entries already retried.")
@output_options
@pass_ctx
@friendly_errors
def quarantine_list(ctx: Context, include_retried: bool, as_json: bool) -> None:
    """Quarantined mails with their error."""
    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store import queries

    rows = queries.list_quarantine(db, include_retried=include_retried)
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
    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store import queries
    from gateway.store.db import write_transaction

    with write_transaction(db):
        job_id = queries.retry_quarantined(db, quarantine_id)
    click.echo(f"quarantine {quarantine_id}: queued again as job {job_id}")


COMMANDS = (retry, quarantine)
