"""`mail-gateway hubspot setup`, `connect` and `check`.

The HubSpot adapter (aiohttp) is imported inside each command, not when the CLI starts.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import click

from gateway.cli.common import Context, friendly_errors, pass_ctx
from gateway.cli.output import emit_json, output_options

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.hubspot.connect import Endpoint


async def _endpoint(settings: Settings) -> Endpoint:
    from gateway.hubspot.connect import endpoint_for, sandbox_info_from

    info = await sandbox_info_from(settings) if settings.hubspot.mode == "sandbox" else None
    return endpoint_for(settings, info)


@click.group()
def hubspot() -> None:
    """Connect the gateway to HubSpot and set up the channel, inbox and ticket pipeline."""


@hubspot.command("setup")
@output_options
@pass_ctx
@friendly_errors
def setup_command(ctx: Context, as_json: bool) -> None:
    """Find or create the custom channel, channel accounts, pipeline stage, unique property.

    Running it again changes nothing; it prints what it found and what it changed.
    """
    import asyncio

    from gateway.hubspot.connect import build_client
    from gateway.hubspot.setup import SETUP_KEY, run_setup
    from gateway.store.db import Store
    from gateway.store.queries import kv_set

    settings = ctx.settings

    async def run():
        store = Store(settings.db_path)
        try:
            ep = await _endpoint(settings)
            async with build_client(settings, store, ep) as client:
                mailboxes = sorted(set(settings.smtp.addresses))
                report = await run_setup(
                    client, settings.hubspot, mailboxes, settings.http.public_url
                )
            ids = report.ids.to_json()
            await store.write(lambda db: kv_set(db, SETUP_KEY, ids))
            return report
        finally:
            store.close()

    report = asyncio.run(run())
    if as_json:
        emit_json(
            {
                "found": report.found,
                "changed": report.changed,
                "ids": json.loads(report.ids.to_json()),
            }
        )
        return
    for line in report.found:
        click.echo(f"found    {line}")
    for line in report.changed:
        click.echo(f"changed  {line}")
    if not report.changed:
        click.echo("nothing to change")


@hubspot.command("connect")
@click.option("--wait/--no-wait", default=True, help="Wait until the gateway got the callback.")
@click.option("--timeout", default=600, show_default=True, help="Seconds to wait.")
@pass_ctx
@friendly_errors
def connect_command(ctx: Context, wait: bool, timeout: int) -> None:
    """OAuth: print the authorize URL; the running daemon receives the callback and keeps
    the tokens in its store (never in the config file)."""
    import asyncio
    import secrets

    from gateway.hubspot.connect import OAUTH_KEY, authorize_url
    from gateway.store.db import write_transaction
    from gateway.store.queries import kv_get, put_oauth_state

    settings = ctx.settings
    ep = asyncio.run(_endpoint(settings))
    if not ep.client_id:
        raise click.ClickException(
            "hubspot.client_id is empty: set your app's client id (and client_secret)"
        )
    state = secrets.token_urlsafe(16)
    db = ctx.db()
    before = kv_get(db, OAUTH_KEY)
    with write_transaction(db):
        put_oauth_state(db, state, now=time.time())
    click.echo("Open this URL in a browser logged in to HubSpot and approve the app:")
    click.echo(authorize_url(ep, settings.http.public_url, state))
    if not wait:
        return
    click.echo("waiting for HubSpot to call back the gateway …", err=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = kv_get(db, OAUTH_KEY)
        if now and now != before:
            click.echo("connected: tokens stored; they are refreshed automatically")
            return
        time.sleep(1)
    raise click.ClickException(
        f"no callback within {timeout} s: is `mail-gateway serve` running and "
        f"{settings.http.public_url} reachable from your browser?"
    )


@hubspot.command("check")
@output_options(help="Print the checks as a JSON list.")
@pass_ctx
def check_command(ctx: Context, as_json: bool) -> None:
    """Prove, read-only, that HubSpot is ready: token and its scopes, inbox, pipeline and
    stage, the unique ticket property, owner, the channel's webhook URL, one channel account
    per support address.

    One line per check (ok / problem and the fix naming the config key); exit 1 on a problem.
    Works against the configured portal (hubspot.mode = "live") or the running sandbox.
    """
    from gateway.cli.ops import report_checks
    from gateway.doctor import hubspot_check

    report_checks(hubspot_check(ctx.config_path), as_json)


COMMANDS = (hubspot,)
