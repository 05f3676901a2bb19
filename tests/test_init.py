"""`mail-gateway init` (issue 15 item 2): the answers, by prompts or by flags, become a config
that passes `config check`; secrets go to the credentials folder, never into the config; the
checklist names the DNS records (with the generated DKIM key's), the forwarding rule per
provider, the reverse proxy and the HubSpot steps."""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path

import dkim
from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import load_settings

SECRETS = {
    "HUBSPOT_CLIENT_SECRET": "client-secret-from-env",
    "HUBSPOT_DEVELOPER_API_KEY": "developer-key-from-env",
    "RELAY_PASSWORD": None,
    "IMAP_PASSWORD": None,
    "CREDENTIALS_DIRECTORY": None,
}


def invoke(config: Path, *args: str, input: str | None = None, env: dict | None = None):
    return CliRunner().invoke(
        cli, ["--config", str(config), *args], input=input, env={**SECRETS, **(env or {})}
    )


def config_check(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["--config", str(config), "config", "check"], env={"CREDENTIALS_DIRECTORY": None}
    )
    return result.exit_code, result.stdout + result.stderr


def flags(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "init",
        "--non-interactive",
        "--address",
        "help@support.example.com",
        "--hostname",
        "gw.support.example.com",
        "--app-id",
        "5500001",
        "--client-id",
        "client-id-1",
        "--state-dir",
        str(tmp_path / "state"),
        *extra,
    ]


def test_init_by_flags_writes_a_config_that_passes_config_check(tmp_path: Path):
    config = tmp_path / "etc" / "config.toml"
    result = invoke(
        config,
        *flags(
            tmp_path,
            "--intake",
            "mx",
            "--relay-host",
            "smtp.example.com",
            "--relay-port",
            "587",
            "--relay-user",
            "gw",
        ),
        env={"RELAY_PASSWORD": "s3cret-relay"},
    )
    assert result.exit_code == 0, result.output
    code, out = config_check(config)
    assert code == 0, out

    raw = tomllib.loads(config.read_text())
    assert raw["hubspot"]["mode"] == "live"
    assert raw["smtp"]["listen"] == "0.0.0.0:25"
    assert raw["smtp"]["addresses"] == ["help@support.example.com"]
    assert raw["relay"] == raw["relay"] | {
        "mode": "smtp",
        "host": "smtp.example.com",
        "port": 587,
        "tls": "starttls",
        "username": "gw",
        "password_file": "relay-password",
    }
    assert Path(raw["gateway"]["state_dir"]).is_absolute()
    assert Path(raw["assistant"]["knowledge_dir"]).is_absolute()

    # secrets in the credentials folder (0700, files 0600), none in the config
    text = config.read_text()
    for secret in ("client-secret-from-env", "developer-key-from-env", "s3cret-relay"):
        assert secret not in text
    creds = config.parent / "credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o700
    assert (creds / "hubspot-client-secret").read_text().strip() == "client-secret-from-env"
    assert (creds / "relay-password").read_text().strip() == "s3cret-relay"
    for f in creds.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    s = load_settings(config)
    assert s.hubspot.client_secret == "client-secret-from-env"
    assert s.relay.password == "s3cret-relay"

    out = result.output
    assert "help@support.example.com" in out and "gw.support.example.com" in out
    assert "support.example.com.  MX 10 gw.support.example.com." in out
    assert "v=spf1" in out and "_dmarc.support.example.com." in out
    assert "reverse_proxy 127.0.0.1:8025" in out and "proxy_pass http://127.0.0.1:8025" in out
    assert "https://gw.support.example.com/hubspot/oauth-callback" in out
    assert "mail-gateway hubspot connect" in out


def test_the_dkim_record_printed_verifies_the_key_written(tmp_path: Path):
    config = tmp_path / "config.toml"
    result = invoke(config, *flags(tmp_path, "--intake", "mx", "--dkim-selector", "sel1"))
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if "sel1._domainkey." in ln)
    name, _, value = line.strip().partition("  TXT ")
    assert name == "sel1._domainkey.support.example.com."
    record = "".join(re.findall(r'"([^"]*)"', value))
    assert record.startswith("v=DKIM1; k=rsa; ")

    s = load_settings(config)
    assert (s.relay.dkim_selector, s.relay.dkim_domain) == ("sel1", "support.example.com")
    raw = b"From: help@support.example.com\r\nTo: a@customer.test\r\nSubject: t\r\n\r\nhi\r\n"
    signed = dkim.sign(raw, b"sel1", b"support.example.com", str(s.relay.dkim_key).encode())
    assert dkim.verify(signed + raw, dnsfunc=lambda _name, timeout=5: record.encode())


def test_init_by_prompts_forwarding(tmp_path: Path):
    config = tmp_path / "config.toml"
    answers = [
        "support@example.com",  # addresses
        "forward",  # intake
        "gw.example.com",  # this host's mail name
        "localhost",  # relay host
        "25",  # relay port
        "none",  # relay TLS
        "",  # relay user
        "https://gw.example.com",  # public URL
        "5500001",  # app id
        "client-id-1",  # client id
        "-",  # DKIM selector: none
        "typed-client-secret",  # hidden
        "typed-developer-key",  # hidden
    ]
    result = invoke(
        config,
        "init",
        "--state-dir",
        str(tmp_path / "state"),
        input="\n".join(answers) + "\n",
        env={"HUBSPOT_CLIENT_SECRET": None, "HUBSPOT_DEVELOPER_API_KEY": None},
    )
    assert result.exit_code == 0, result.output
    assert "typed-client-secret" not in result.output  # hidden input
    code, out = config_check(config)
    assert code == 0, out
    s = load_settings(config)
    assert s.hubspot.client_secret == "typed-client-secret"
    assert s.smtp.addresses == ["support@example.com"]
    assert s.smtp.domains == ["gw.example.com"]  # the forwarding target is accepted
    assert s.relay.dkim_selector == ""

    out = result.output
    assert "support@example.com -> support@gw.example.com" in out
    assert "Google Workspace" in out and "Add more recipients" in out
    assert "New-HostedOutboundSpamFilterPolicy" in out and "-AutoForwardingMode On" in out
    assert "smtp:[gw.example.com]:25" in out  # Postfix transport
    assert "driver = manualroute" in out  # Exim


def test_init_imap_intake(tmp_path: Path):
    config = tmp_path / "config.toml"
    result = invoke(
        config,
        *flags(
            tmp_path,
            "--intake",
            "imap",
            "--imap-host",
            "imap.example.com",
            "--imap-user",
            "help@support.example.com",
            "--dkim-selector",
            "",
        ),
        env={"IMAP_PASSWORD": "imap-pass"},
    )
    assert result.exit_code == 0, result.output
    s = load_settings(config)
    (account,) = s.imap
    assert (account.host, account.user, str(account.password)) == (
        "imap.example.com",
        "help@support.example.com",
        "imap-pass",
    )
    assert str(s.smtp.listen) == "127.0.0.1:2525"
    assert "MX 10" not in result.output


def test_init_says_what_is_still_missing_and_keeps_an_existing_config(tmp_path: Path):
    config = tmp_path / "config.toml"
    result = invoke(
        config,
        *flags(tmp_path, "--intake", "mx"),
        env={"HUBSPOT_CLIENT_SECRET": None, "HUBSPOT_DEVELOPER_API_KEY": None},
    )
    # written, the checklist printed, and the exit code says what config check will say
    assert result.exit_code == 2
    assert "hubspot.client_secret: not set" in result.output
    assert "Next steps for this setup" in result.output
    before = config.read_text()
    result = invoke(config, *flags(tmp_path, "--intake", "forward"))
    assert result.exit_code == 1 and "pass --force" in result.output
    assert config.read_text() == before


def test_an_apex_domain_mx_is_warned_about(tmp_path: Path):
    result = invoke(
        tmp_path / "config.toml",
        "init",
        "--non-interactive",
        "--address",
        "support@example.com",
        "--intake",
        "mx",
        "--hostname",
        "gw.example.com",
        "--state-dir",
        str(tmp_path / "state"),
    )
    assert "the MX of example.com takes ALL mail of example.com" in result.output
