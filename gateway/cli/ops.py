"""Running and checking an installation: `serve`, `status`, `config check|show`, `doctor`."""

from __future__ import annotations

import click

from gateway.cli.common import (
    Context,
    credentials_dir_option,
    daemon_line,
    daemon_pid,
    friendly_errors,
    pass_ctx,
)
from gateway.cli.output import emit_json, emit_pairs, output_options

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command()
@pass_ctx
@friendly_errors
def serve(ctx: Context) -> None:
    """Run the daemon (SMTP intake, HTTP, worker) until SIGTERM or SIGINT."""
    import asyncio

    from gateway.logs import setup_logging
    from gateway.service import serve as run_service

    s = ctx.settings
    setup_logging(s.gateway.log_level, s.gateway.log_format)
    asyncio.run(run_service(s))


@click.command()
@output_options
@pass_ctx
@friendly_errors
def status(ctx: Context, as_json: bool) -> None:
    """Whether the daemon runs; mails accepted today, conversations, queue depth, quarantine,
    last mail."""
    db = ctx.db()  # before the store's verbs: see common.py
    from gateway.store import queries

    pid = daemon_pid(ctx.settings)
    data = queries.status(db)
    if as_json:
        emit_json({"daemon": {"running": pid is not None, "pid": pid or None}, **data})
    else:
        click.echo(f"daemon: {daemon_line(ctx.settings)}")
        emit_pairs(data)


@click.group()
def config() -> None:
    """Check or show the configuration."""


@config.command("check")
@credentials_dir_option
@pass_ctx
@friendly_errors
def config_check(ctx: Context) -> None:
    """Validate the configuration file and what it needs to run; one line per problem.

    Beyond the file: the folders the daemon writes, live mode's HubSpot credentials, a capture
    relay or a plain-http public URL in live mode (warnings), a public sandbox. Exit 2 on any
    error; warnings alone exit 0.
    """
    from gateway.config import deployment_findings, path_problems
    from gateway.errors import ConfigError

    s = ctx.settings
    label = s.source.name if s.source else ctx.config_path
    findings = deployment_findings(s)
    for f in findings:
        if f.level == "warning":
            click.echo(f"warning: {label}: {f}", err=True)
    errors = path_problems(s) + [f"{label}: {f}" for f in findings if f.level == "error"]
    if errors:
        raise ConfigError(errors)
    warned = sum(f.level == "warning" for f in findings)
    click.echo(f"{s.source}: ok" + (f" ({warned} warning(s) above)" if warned else ""))


@config.command("show")
@output_options
@pass_ctx
@friendly_errors
def config_show(ctx: Context, as_json: bool) -> None:
    """Print the effective settings as TOML (or JSON), secrets redacted.

    The TOML reads back with tomllib into the same values; a key that is not set (no value in
    TOML) is left out, and `[[imap]]` accounts are an array of tables as in the file.
    """
    from gateway.config import redacted

    data = redacted(ctx.settings)
    if as_json:
        emit_json(data)
    else:
        click.echo(settings_toml(data), nl=False)


@click.command()
@output_options(help="Print the checks as a JSON list.")
@credentials_dir_option
@pass_ctx
def doctor(ctx: Context, as_json: bool) -> None:
    """Check config, store, SMTP, DNS, HubSpot, relay, signatures and knowledge.

    Each check is ok, warn or fail, with the fix in one sentence. The exit code is 1 when any
    check fails (warnings alone exit 0).
    """
    from gateway.doctor import doctor as run_doctor

    report_checks(run_doctor(ctx.config_path), as_json)


# how redacted() shows a secret: as a value in TOML it would read back as the secret itself
_HIDDEN = ("(set, hidden)", "(not set)")


def settings_toml(data: dict[str, dict]) -> str:
    """`redacted()` settings as a TOML document (tomli_w) that tomllib reads back: None values
    dropped (TOML has no null), the `imap.N` sections as the `[[imap]]` array, and secrets as
    comments under their table's header (`# access_token = (set, hidden)`), never as values:
    a copy of this output used as a config leaves them unset instead of set to a mask."""
    import tomli_w

    def clean(section: dict) -> dict:
        return {k: v for k, v in section.items() if v is not None and v not in _HIDDEN}

    def notes(section: dict) -> str:
        return "".join(f"# {k} = {v}\n" for k, v in section.items() if v in _HIDDEN)

    tables = {k: v for k, v in data.items() if not k.startswith("imap.")}
    accounts = [v for k, v in data.items() if k.startswith("imap.")]
    doc: dict[str, object] = {k: clean(v) for k, v in tables.items()}
    if accounts:
        doc["imap"] = [clean(v) for v in accounts]
    text = tomli_w.dumps(doc, multiline_strings=True)
    for name, section in tables.items():
        header = f"[{name}]\n"
        text = text.replace(header, header + notes(section), 1)
    head, *rest = text.split("[[imap]]\n")
    return head + "".join(
        "[[imap]]\n" + notes(account) + part for account, part in zip(accounts, rest, strict=True)
    )


def report_checks(checks: list, as_json: bool) -> None:
    """Print doctor-shaped checks (one line each, the fix under a problem); exit 1 on a fail."""
    if as_json:
        emit_json([c.to_json() for c in checks])
    else:
        for c in checks:
            click.echo(f"{_MARK.get(c.status, c.status)}  {c.name}: {c.detail}")
            if c.status != "ok" and c.fix:
                click.echo(f"      fix: {c.fix}")
    if any(c.status == "fail" for c in checks):
        raise SystemExit(1)


COMMANDS = (serve, status, config, doctor)
