"""`mail-gateway init`: write a production config from answers, then say what to set up.

Every question is also a flag, so `init --non-interactive --address ... --intake mx ...`
automates it; a question whose flag is given is not asked. The config is the production
template (gateway/templates/config.production.toml) with the answers filled in; secrets go
to one file each in the `credentials` folder beside the config (0600; what the unit's
LoadCredential= lines read), never into the config. Then the config is checked as
`config check` does, and the checklist for this setup is printed: DNS (MX, SPF, DKIM with
the generated key's record, DMARC), the forwarding rule per provider, the reverse proxy for
public_url, the HubSpot steps.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import click

from gateway.cli.common import Context, friendly_errors, pass_ctx
from gateway.config import is_loopback

INTAKES = ("mx", "forward", "imap")
# every credential the unit loads (systemd/mail-gateway.service): created empty when absent
CREDENTIAL_NAMES = (
    "gateway-secret",
    "hubspot-token",
    "hubspot-client-secret",
    "hubspot-developer-key",
    "relay-password",
    "dkim-key",
    "openai-key",
    "imap-password",
    "admin-token",
    # auth = "oauth2" (XOAUTH2 at Microsoft 365 or Google) for the relay and the [[imap]] login
    "relay-oauth-client-secret",
    "relay-oauth-refresh-token",
    "relay-oauth-service-account",
    "imap-oauth-client-secret",
    "imap-oauth-refresh-token",
    "imap-oauth-service-account",
)
# secrets init may be given in the environment (never as flags: argv is visible to all)
SECRET_ENV = {
    "hubspot-client-secret": ("HUBSPOT_CLIENT_SECRET", "HubSpot app's client secret"),
    "hubspot-developer-key": ("HUBSPOT_DEVELOPER_API_KEY", "HubSpot developer API key"),
    "relay-password": ("RELAY_PASSWORD", "relay AUTH password"),
    "imap-password": ("IMAP_PASSWORD", "IMAP password"),
}


@dataclass
class Answers:
    addresses: list[str]
    intake: str
    hostname: str
    smtp_listen: str
    relay_host: str
    relay_port: int
    relay_tls: str
    relay_username: str
    public_url: str
    http_listen: str
    app_id: str
    client_id: str
    dkim_selector: str
    state_dir: str
    knowledge_dir: str
    imap_host: str = ""
    imap_user: str = ""
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def domains(self) -> list[str]:
        """The support addresses' domains, in order."""
        return list(dict.fromkeys(a.rpartition("@")[2] for a in self.addresses))

    def forward_target(self, address: str) -> str:
        """Where a forwarding rule sends a support address's mail: the same local part at the
        gateway's own mail name (accepted through smtp.domains)."""
        return f"{address.rpartition('@')[0]}@{self.hostname}"


def render(a: Answers) -> str:
    """The production template with the answers filled in (TOML strings JSON-quoted)."""
    text = resources.files("gateway").joinpath("templates/config.production.toml").read_text()
    imap = ""
    if a.intake == "imap":
        imap = (
            "\n# The support mailbox the gateway reads (IDLE; each mail flagged \\Seen once "
            "stored).\n[[imap]]\n"
            f"host = {json.dumps(a.imap_host)}\nuser = {json.dumps(a.imap_user)}\n"
            f'password_file = "imap-password"\nmailbox = {json.dumps(a.addresses[0])}\n'
            'folders = ["INBOX"]\nafter = "seen"\n'
            '# auth = "oauth2" (Microsoft 365, Google: README): the secrets of its flow\n'
            'client_secret_file = "imap-oauth-client-secret"\n'
            'refresh_token_file = "imap-oauth-refresh-token"\n'
            'service_account_key_file = "imap-oauth-service-account"\n'
        )
    notes = {
        "mx": "the support domain's MX record points at this host (port 25).",
        "forward": "the mail provider forwards the support address to "
        f"{a.forward_target(a.addresses[0])} (smtp.domains accepts {a.hostname}).",
        "imap": "the gateway reads the support mailbox over IMAP ([[imap]] below); SMTP "
        "listens on loopback only, for receive-test and a local MTA.",
    }
    values = {
        "state_dir": a.state_dir,
        "hostname": a.hostname,
        "intake_note": notes[a.intake],
        "smtp_listen": a.smtp_listen,
        "addresses": json.dumps(a.addresses),
        "domains": json.dumps([a.hostname] if a.intake == "forward" else []),
        "http_listen": a.http_listen,
        "public_url": a.public_url,
        "app_id": a.app_id,
        "client_id": a.client_id,
        "relay_host": a.relay_host,
        "relay_port": str(a.relay_port),
        "relay_tls": a.relay_tls,
        "relay_username": a.relay_username,
        "dkim_selector": a.dkim_selector,
        "dkim_domain": a.domains[0] if a.dkim_selector else "",
        "knowledge_dir": a.knowledge_dir,
        "imap": imap,
    }
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text, "a template placeholder without an answer"
    return text


def _default_hostname(addresses: list[str]) -> str:
    fqdn = socket.getfqdn()
    if "." in fqdn and not fqdn.startswith("localhost"):
        return fqdn
    domain = addresses[0].rpartition("@")[2] if addresses else "example.com"
    return f"gw.{domain}"


def _dkim_key(path: Path) -> str:
    """A new 2048-bit RSA key in `path` (0600) with dkimpy's key tool; returns the TXT
    record's value ("v=DKIM1; k=rsa; h=sha256; p=...", RFC 6376 section 3.6.1)."""
    import tempfile

    from dkim import dknewkey

    old = os.umask(0o077)
    try:
        dknewkey.GenRSAKeys(str(path), verbose=False)
        with tempfile.TemporaryDirectory() as tmp:
            dns = Path(tmp) / "dns"
            dknewkey.ExtractRSADnsPublicKey(str(path), str(dns), verbose=False)
            return dns.read_text().strip()
    finally:
        os.umask(old)


def _txt(value: str) -> str:
    """A TXT value as DNS zone strings of at most 255 characters (RFC 1035 section 3.3)."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


def checklist(a: Answers, dkim_txt: str, config_path: str) -> str:
    """What to set up outside the gateway for these answers, in the order to do it."""
    host = a.hostname
    lines = ["", "Next steps for this setup", "", "1. DNS"]
    lines.append(f"   {host}.  A/AAAA  <this server's public address>   (and PTR back to {host})")
    if a.intake == "mx":
        for d in a.domains:
            lines.append(f"   {d}.  MX 10 {host}.")
            if d.count(".") < 2:
                lines.append(
                    f"      careful: the MX of {d} takes ALL mail of {d}; the gateway refuses "
                    "every other address. Use a support subdomain (support." + d + ") or "
                    "intake = forward."
                )
    elif a.intake == "forward":
        lines.append(f"   {host}.  MX 10 {host}.   (the forwarding target's domain)")
    relay = host if is_loopback(a.relay_host) else a.relay_host
    for d in a.domains:
        lines.append(
            f'   {d}.  TXT "v=spf1 a:{relay} ~all"   (merge into the existing SPF record: '
            "one per domain; your provider's include: stays)"
        )
        if dkim_txt:
            lines.append(f"   {a.dkim_selector}._domainkey.{d}.  TXT {_txt(dkim_txt)}")
        lines.append(
            f'   _dmarc.{d}.  TXT "v=DMARC1; p=none; rua=mailto:dmarc@{d}"   '
            "(p=quarantine once the reports show SPF and DKIM pass)"
        )
    if not dkim_txt:
        lines.append("   (no DKIM: run init again with --dkim-selector NAME to sign replies)")
    if a.intake == "forward":
        lines += _forwarding(a)
    elif a.intake == "imap":
        lines += ["", "2. Mail routing: none; the gateway reads the mailbox over IMAP."]
    else:
        lines += ["", "2. Mail routing: the MX above; test from outside with swaks (step 6)."]
    url = a.public_url.rstrip("/")
    public_host = url.split("://", 1)[-1].split("/", 1)[0]
    upstream = a.http_listen.replace("0.0.0.0", "127.0.0.1")
    lines += [
        "",
        f"3. TLS reverse proxy: {url} -> http://{upstream}, only /hubspot/ (webhooks, OAuth",
        "   callback) and /healthz; path and query unchanged (HubSpot signs them). Caddy:",
        f"   {public_host} {{",
        f"       handle /hubspot/* {{ reverse_proxy {upstream} }}",
        f"       handle /healthz {{ reverse_proxy {upstream} }}",
        "       respond 404",
        "   }",
        "   nginx (certificate from certbot):",
        "   server {",
        f"       listen 443 ssl; server_name {public_host};",
        f"       ssl_certificate /etc/letsencrypt/live/{public_host}/fullchain.pem;",
        f"       ssl_certificate_key /etc/letsencrypt/live/{public_host}/privkey.pem;",
        f"       location /hubspot/ {{ proxy_pass http://{upstream}; }}   # no URI after the port",
        f"       location = /healthz {{ proxy_pass http://{upstream}; }}",
        "       location / { return 404; }",
        "   }",
        "",
        "4. HubSpot (README, 'With a real HubSpot portal'):",
        "   in hubspot-app/src/app/app-hsmeta.json set redirectUrls to",
        f'   ["{url}/hubspot/oauth-callback"], then `hs project upload`;',
        "   app id and client id in the config (init --app-id --client-id), client secret and",
        f"   developer API key in {Path(config_path).parent}/credentials/hubspot-client-secret",
        "   and .../hubspot-developer-key (0600).",
        "",
        "5. Start and connect:",
        f"   mail-gateway --config {config_path} config check",
        "   systemctl enable --now mail-gateway",
        "   mail-gateway hubspot connect     # open the URL it prints, approve",
        "   mail-gateway hubspot setup && mail-gateway hubspot check",
        "",
        "6. Prove it:",
        "   mail-gateway doctor",
        "   mail-gateway send-test you@your-own-mailbox.example   # a mail through the relay",
        "   mail-gateway receive-test                           # a mail into the listener",
        f"   swaks --server {host}:25 --to {a.addresses[0]} --from you@elsewhere.example \\",
        "         --header 'Subject: gateway test' --body 'from outside'   # from another host",
    ]
    return "\n".join(lines)


def _forwarding(a: Answers) -> list[str]:
    src = a.addresses[0]
    dst = a.forward_target(src)
    domain = src.rpartition("@")[2]
    return [
        "",
        f"2. Forwarding {src} -> {dst} (keep a copy in the mailbox if you like):",
        "   Google Workspace: Admin console > Apps > Google Workspace > Gmail > Routing >",
        "     Routing > Configure: Inbound; Envelope recipient: Single recipient " + src + ";",
        f"     Also deliver to: Add more recipients > Advanced > {dst}.",
        "   Microsoft 365 (automatic external forwarding is blocked by default: allow it for",
        "     this mailbox only, Exchange Online PowerShell):",
        '     New-HostedOutboundSpamFilterPolicy -Name "mail-gateway" -AutoForwardingMode On',
        '     New-HostedOutboundSpamFilterRule -Name "mail-gateway" '
        f'-HostedOutboundSpamFilterPolicy "mail-gateway" -From {src}',
        f"     Set-Mailbox -Identity {src} -ForwardingSmtpAddress smtp:{dst} "
        "-DeliverToMailboxAndForward $true",
        f"   Postfix hosting {domain} (send the address straight to the gateway):",
        f"     /etc/postfix/transport:  {src}  smtp:[{a.hostname}]:25",
        "     postmap /etc/postfix/transport && postconf -e "
        "'transport_maps = hash:/etc/postfix/transport' && postfix reload",
        f"   Exim hosting {domain} (a router before the local ones):",
        "     mail_gateway:",
        "       driver = manualroute",
        f"       domains = {domain}",
        f"       local_parts = {src.rpartition('@')[0]}",
        "       transport = remote_smtp",
        f"       route_list = * {a.hostname}::25 byname",
    ]


def _ask(value, interactive: bool, text: str, default=None, **kw):
    """The flag's value, else (interactive) the answer to `text`, else the default."""
    if value is not None:
        return value
    if interactive:
        return click.prompt(text, default=default, **kw)
    return default


@click.command()
@click.option("--address", "addresses", multiple=True, help="A support address (repeatable).")
@click.option(
    "--intake",
    type=click.Choice(INTAKES),
    help="mx (a support subdomain's MX points here), forward (the provider forwards), "
    "imap (the gateway reads the mailbox).",
)
@click.option("--hostname", help="This host's mail name (MX target, Message-IDs, greeting).")
@click.option("--smtp-listen", help="SMTP listener; default 0.0.0.0:25 (imap: 127.0.0.1:2525).")
@click.option("--imap-host", help="intake imap: the IMAP server.")
@click.option("--imap-user", help="intake imap: the login ($IMAP_PASSWORD: the password).")
@click.option("--relay-host", help="Relay for replies (your MTA or the provider's submission).")
@click.option("--relay-port", type=click.IntRange(1, 65535), help="25, 587 or 465.")
@click.option("--relay-tls", type=click.Choice(("starttls", "implicit", "none")))
@click.option("--relay-user", help="Relay AUTH user ($RELAY_PASSWORD: the password).")
@click.option("--public-url", help="The https URL HubSpot calls (the reverse proxy).")
@click.option("--http-listen", help="HTTP listener behind the proxy; default 127.0.0.1:8025.")
@click.option("--app-id", help="HubSpot app id.")
@click.option("--client-id", help="HubSpot app client id ($HUBSPOT_CLIENT_SECRET: the secret).")
@click.option("--dkim-selector", help='DKIM selector; a key is generated; "" = no DKIM.')
@click.option("--state-dir", default="/var/lib/mail-gateway", show_default=True)
@click.option("--knowledge-dir", help="Knowledge articles; default: knowledge beside the config.")
@click.option("--non-interactive", is_flag=True, help="Ask nothing: flags and defaults only.")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@pass_ctx
@friendly_errors
def init(ctx: Context, non_interactive: bool, force: bool, **flags) -> None:
    """Write a production config (to --config) and print the setup checklist.

    Secrets come from the environment ($HUBSPOT_CLIENT_SECRET, $HUBSPOT_DEVELOPER_API_KEY,
    $RELAY_PASSWORD, $IMAP_PASSWORD) or hidden prompts, and go to the credentials folder
    beside the config, never into it.
    """
    from gateway.errors import ConfigError

    path = Path(ctx.config_path)
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to replace it")
    answers = _answers(flags, interactive=not non_interactive, config_dir=path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    creds = path.parent / "credentials"
    _write_credentials(creds, answers)
    dkim_txt = ""
    if answers.dkim_selector:
        key = creds / "dkim-key"
        if key.exists() and key.stat().st_size and not force:
            raise click.ClickException(f"{key} holds a key already; pass --force to replace it")
        dkim_txt = _dkim_key(key)
    path.write_text(render(answers), encoding="utf-8")
    click.echo(f"wrote {path}")
    problems = _check(path)
    click.echo(checklist(answers, dkim_txt, str(path)))
    if problems:
        raise ConfigError(problems)


def _answers(flags: dict, interactive: bool, config_dir: Path) -> Answers:
    addresses = list(flags["addresses"])
    if not addresses:
        if not interactive:
            raise click.UsageError("--address is required with --non-interactive")
        raw = click.prompt("Support addresses (comma-separated)")
        addresses = [a.strip() for a in raw.split(",") if a.strip()]
    domain = addresses[0].rpartition("@")[2]
    intake = _ask(
        flags["intake"],
        interactive,
        "Intake: mx (support subdomain's MX here), forward, or imap",
        default="mx" if domain.count(".") >= 2 else "forward",
        type=click.Choice(INTAKES),
    )
    hostname = _ask(
        flags["hostname"], interactive, "This host's mail name", _default_hostname(addresses)
    )
    imap_host = imap_user = ""
    if intake == "imap":
        imap_host = _ask(flags["imap_host"], interactive, "IMAP server", f"imap.{domain}")
        imap_user = _ask(flags["imap_user"], interactive, "IMAP login", addresses[0])
    smtp_listen = flags["smtp_listen"] or ("127.0.0.1:2525" if intake == "imap" else "0.0.0.0:25")
    relay_host = _ask(flags["relay_host"], interactive, "Relay host for replies", "localhost")
    relay_port = _ask(flags["relay_port"], interactive, "Relay port", 25, type=int)
    tls_default = (
        "none" if is_loopback(relay_host) else ("implicit" if relay_port == 465 else "starttls")
    )
    relay_tls = _ask(
        flags["relay_tls"],
        interactive,
        "Relay TLS",
        tls_default,
        type=click.Choice(("starttls", "implicit", "none")),
    )
    relay_user = _ask(flags["relay_user"], interactive, "Relay AUTH user (empty: none)", "")
    public_url = _ask(
        flags["public_url"], interactive, "Public https URL for HubSpot", f"https://{hostname}"
    )
    app_id = _ask(flags["app_id"], interactive, "HubSpot app id (empty: later)", "")
    client_id = _ask(flags["client_id"], interactive, "HubSpot client id (empty: later)", "")
    selector = _ask(flags["dkim_selector"], interactive, "DKIM selector (- for none)", "mailgw")
    selector = "" if selector.strip() == "-" else selector.strip()
    secrets = {}
    wanted = ["hubspot-client-secret", "hubspot-developer-key"]
    wanted += ["relay-password"] if relay_user else []
    wanted += ["imap-password"] if intake == "imap" else []
    for name in wanted:
        env, what = SECRET_ENV[name]
        value = os.environ.get(env, "")
        if not value and interactive:
            value = click.prompt(
                f"{what} (hidden; empty: later)", default="", hide_input=True, show_default=False
            )
        secrets[name] = value.strip()
    return Answers(
        addresses=addresses,
        intake=intake,
        hostname=hostname,
        smtp_listen=smtp_listen,
        relay_host=relay_host,
        relay_port=relay_port,
        relay_tls=relay_tls,
        relay_username=relay_user,
        public_url=public_url.rstrip("/"),
        http_listen=flags["http_listen"] or "127.0.0.1:8025",
        app_id=app_id,
        client_id=client_id,
        dkim_selector=selector,
        state_dir=flags["state_dir"],
        knowledge_dir=flags["knowledge_dir"] or str(config_dir.resolve() / "knowledge"),
        imap_host=imap_host,
        imap_user=imap_user,
        secrets=secrets,
    )


def _write_credentials(folder: Path, a: Answers) -> None:
    """The credentials folder (0700) with every file the unit loads (0600; empty = not set);
    the secrets given are written, files that hold one already are kept otherwise."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name in CREDENTIAL_NAMES:
        p = folder / name
        value = a.secrets.get(name, "")
        if value or not p.exists():
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(value + ("\n" if value else ""))


def _check(path: Path) -> list[str]:
    """What `config check` says about the new file: printed warnings, returned errors."""
    from gateway.config import deployment_findings, load_settings, path_problems
    from gateway.errors import ConfigError

    try:
        settings = load_settings(path)
    except ConfigError as exc:
        return exc.problems
    findings = deployment_findings(settings)
    for f in findings:
        if f.level == "warning":
            click.echo(f"warning: {path.name}: {f}", err=True)
    errors = path_problems(settings) + [f"{path.name}: {f}" for f in findings if f.level == "error"]
    if not errors:
        click.echo(f"config check: {path}: ok")
    return errors


COMMANDS = (init,)
