"""`mail-gateway mailbox status` and `mailbox connect NAME`: the logins of the mailboxes the
gateway reads ([[imap]]) and sends through ([relay]), and their OAuth 2.0 tokens.

A NAME is `relay`, or an [[imap]] account's user, its key (user@host:port) or `imap[N]`.
`connect` is for the delegated flow (microsoft device_code, RFC 8628): it shows the code and
the address where a person signs in as the mailbox, waits, and keeps the token in the store,
where the running gateway finds it. App-only flows need no sign-in: `doctor` tries them.
"""

from __future__ import annotations

import time
from typing import Any

import click

from gateway.cli.common import Context, friendly_errors, pass_ctx
from gateway.cli.output import emit_json, emit_table, output_options


@click.group("mailbox")
def mailbox_command() -> None:
    """Mailbox logins: OAuth 2.0 tokens for Microsoft 365, Google Workspace and others."""


def _logins(settings: Any) -> list[tuple[str, str, Any, str]]:
    """(name, store login, keys, user) of every mailbox login, [relay] first when it sends."""
    from gateway.mailauth.tokens import RELAY_LOGIN, imap_login

    out = []
    if settings.relay.mode == "smtp":
        out.append(("relay", RELAY_LOGIN, settings.relay, settings.relay.username))
    for i, a in enumerate(settings.imap):
        out.append((f"imap[{i}]", imap_login(a), a, a.user))
    return out


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else ""


@mailbox_command.command("status")
@output_options
@pass_ctx
@friendly_errors
def mailbox_status(ctx: Context, as_json: bool) -> None:
    """Per login: auth, provider, flow, token expiry, last successful login, last error."""
    logins = _logins(ctx.settings)
    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store import tokens

    stored = tokens.all_tokens(db)
    rows = []
    for name, login, keys, user in logins:
        t = stored.get(login)
        device = keys.auth == "oauth2" and keys.oauth_flow == "device_code"
        rows.append(
            {
                "name": name,
                "user": user,
                "auth": keys.auth,
                "provider": keys.provider,
                "flow": keys.oauth_flow if keys.auth == "oauth2" else "",
                "token_expires": _when(t.expires_at) if t and t.access_token else "",
                "connected": bool(t and t.refresh_token) if device else None,
                "last_login": (t.last_login_at or "") if t else "",
                "last_error": t.last_error if t else "",
            }
        )
    if as_json:
        emit_json(rows)
        return
    emit_table(
        rows,
        ["name", "user", "auth", "provider", "flow", "token_expires", "last_login", "last_error"],
        "no mailbox logins configured (relay mode capture, no [[imap]])",
    )


@mailbox_command.command("connect")
@click.argument("name")
@pass_ctx
@friendly_errors
def mailbox_connect(ctx: Context, name: str) -> None:
    """Sign in as the mailbox NAME (relay, an [[imap]] user, or imap[N]) with a device code,
    and keep its token for the gateway."""
    found = [
        entry
        for entry in _logins(ctx.settings)
        if name in (entry[0], entry[3]) or entry[1] == f"imap:{name}"
    ]
    if not found:
        names = ", ".join(f"{n} ({u})" for n, _l, _k, u in _logins(ctx.settings)) or "none"
        raise click.ClickException(f"no mailbox login named {name!r} (known: {names})")
    label, login, keys, user = found[0]
    if keys.auth != "oauth2" or keys.oauth_flow != "device_code":
        flow = keys.oauth_flow if keys.auth == "oauth2" else "a password"
        raise click.ClickException(
            f"{label} logs in with {flow}: nothing to sign in to (only provider = "
            '"microsoft" with flow = "device_code" needs it); `mail-gateway doctor` tries the '
            "login"
        )
    db = ctx.db()
    from gateway.mailauth import providers
    from gateway.store import tokens
    from gateway.store.db import write_transaction

    flow = providers.device_flow_start(keys)
    click.echo(flow.get("message") or f"Open {flow['verification_uri']}: {flow['user_code']}")
    click.echo(f"Sign in as {user}. Waiting (the code is valid for {flow['expires_in']} s)...")
    grant = providers.device_flow_finish(flow)
    with write_transaction(db):
        tokens.save_token(
            db,
            login,
            provider=keys.provider,
            flow=keys.oauth_flow,
            access_token=grant.access_token,
            expires_at=grant.expires_at,
            refresh_token=grant.refresh_token,
        )
    click.echo(f"{label}: connected; token valid until {_when(grant.expires_at)}")


COMMANDS = (mailbox_command,)
