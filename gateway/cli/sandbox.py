"""``mail-gateway sandbox``: run the HubSpot sandbox alone until SIGINT/SIGTERM.

The sandbox app (aiohttp, half a second to import) is imported when the command runs, not when
the CLI starts.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import click

# the same as [hubspot] sandbox_listen's default and the README: one sandbox port everywhere
DEFAULT_LISTEN = "127.0.0.1:8026"


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _serve(host: str, port: int, db: Path | None, options: dict[str, object]) -> None:
    import asyncio

    from gateway.sandbox import start_sandbox

    server = await start_sandbox(host, port, db, **options)
    info = server.info()
    click.echo(f"HubSpot sandbox: {server.url}")
    click.echo(f"Rep console:     {info['consoleUrl']}")
    click.echo(json.dumps({k: v for k, v in info.items() if k != "scopes"}, indent=2))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()
        click.echo("sandbox stopped")


@click.command("sandbox")
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    help="HOST:PORT to serve on (port 0 picks a free port).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file that keeps the sandbox state across restarts.",
)
@click.option(
    "--webhook-target",
    default=None,
    help="URL that receives the app's conversation.* webhook events.",
)
@click.option(
    "--burst-limit",
    type=int,
    default=100,
    show_default=True,
    help="Requests per rolling 10 seconds before a 429.",
)
@click.option(
    "--public-url", default=None, help="Base URL clients use to reach the sandbox (behind a proxy)."
)
@click.option(
    "--admin-token",
    envvar="MAIL_GATEWAY_SANDBOX_TOKEN",
    default="",
    show_envvar=True,
    help="Bearer token the admin and rep console APIs then require; needed off loopback.",
)
def sandbox_command(
    listen: str,
    db: Path | None,
    webhook_target: str | None,
    burst_limit: int,
    public_url: str | None,
    admin_token: str,
) -> None:
    """Run a local stand-in for HubSpot (CRM, inbox, custom channels, rep console)."""
    import asyncio
    import ipaddress

    host, port = _listen(listen)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not admin_token:
        raise click.BadParameter(
            f"{host} is not a loopback address and the sandbox's demo secrets are public: "
            "set $MAIL_GATEWAY_SANDBOX_TOKEN (or --admin-token) to protect its admin and "
            "console APIs",
            param_hint="--listen",
        )
    options: dict[str, object] = {
        "burst_limit": burst_limit,
        "public_url": public_url,
        "webhook_target_url": webhook_target,
        "admin_token": admin_token,
    }
    try:
        asyncio.run(_serve(host, port, db, options))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc}") from exc


COMMANDS = (sandbox_command,)
