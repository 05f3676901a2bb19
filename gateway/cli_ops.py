"""Operator commands for a running installation: `mail-gateway doctor`."""

from __future__ import annotations

import click

from gateway.cli_common import Context, pass_ctx
from gateway.cli_output import emit_json

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list.")
@pass_ctx
def doctor(ctx: Context, as_json: bool) -> None:
    """Check config, store, SMTP, DNS, HubSpot, relay, signatures and knowledge.

    Each check is ok, warn or fail, with the fix in one sentence. The exit code is 1 when any
    check fails (warnings alone exit 0).
    """
    from gateway.doctor import doctor as run_doctor

    checks = run_doctor(ctx.config_path)
    if as_json:
        emit_json([c.to_json() for c in checks])
    else:
        for c in checks:
            click.echo(f"{_MARK.get(c.status, c.status)}  {c.name}: {c.detail}")
            if c.status != "ok" and c.fix:
                click.echo(f"      fix: {c.fix}")
    if any(c.status == "fail" for c in checks):
        raise SystemExit(1)


COMMANDS = [doctor]
