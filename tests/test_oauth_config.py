"""auth = "oauth2" in [[imap]] and [relay]: the keys each provider and flow needs, secrets from
files, systemd credentials and the environment, and one line naming the key for each mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings, redacted

from conftest import write_config
from dovecot import imap_config

BASE = {"host": "outlook.office365.com", "user": "support@example.com"}
MS = {
    **BASE,
    "mailbox": "support@example.com",
    "auth": "oauth2",
    "provider": "microsoft",
    "tenant": "contoso.onmicrosoft.com",
    "client_id": "app-1",
}


def problems(tmp_path: Path, accounts: list[dict], environ=None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_settings(imap_config(tmp_path, accounts), environ=environ or {})
    return err.value.problems


def test_microsoft_app_only_with_the_secret_from_a_systemd_credential(tmp_path: Path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "m365-secret").write_text("the-secret\n")
    s = load_settings(
        imap_config(tmp_path, [{**MS, "client_secret_file": "m365-secret"}]),
        environ={"CREDENTIALS_DIRECTORY": str(creds)},
    )
    (a,) = s.imap
    assert (a.auth, a.provider, a.oauth_flow, a.client_secret) == (
        "oauth2",
        "microsoft",
        "client_credentials",
        "the-secret",
    )
    assert not a.password  # no password needed
    assert "the-secret" not in repr(a)
    assert redacted(s)["imap.0"]["client_secret"] == "(set, hidden)"


def test_client_secret_from_the_environment(tmp_path: Path):
    s = load_settings(
        imap_config(tmp_path, [{**MS, "client_secret_env": "M365_SECRET"}]),
        environ={"M365_SECRET": "env-secret"},
    )
    assert s.imap[0].client_secret == "env-secret"
    assert problems(tmp_path, [{**MS, "client_secret_env": "M365_SECRET"}]) == [
        'config.toml: imap[0].client_secret_env: "M365_SECRET" is not set in the environment'
    ]


@pytest.mark.parametrize(
    "account, message",
    [
        (
            {**MS},
            "imap[0].client_secret: missing; microsoft client_credentials needs it (set "
            "client_secret_file or client_secret_env)",
        ),
        (
            {**MS, "client_secret": "x", "tenant": ""},
            "imap[0].tenant: missing; microsoft client_credentials needs it",
        ),
        (
            {**MS, "flow": "service_account", "client_secret": "x"},
            'imap[0].flow: "service_account" is not a flow of provider "microsoft" '
            "(expected one of client_credentials, device_code)",
        ),
        (
            {**BASE, "mailbox": "support@example.com", "auth": "oauth2"},
            'imap[0].provider: missing; auth = "oauth2" needs one of microsoft, google, generic',
        ),
        (
            {**BASE, "mailbox": "support@example.com", "password": "x", "provider": "google"},
            'imap[0].provider: set, but auth is "password"; set auth = "oauth2"',
        ),
        (
            {**MS, "provider": "google", "service_account_key": "{}"},
            "imap[0].service_account_key_file: is not a service account JSON key",
        ),
        (
            {**MS, "provider": "generic", "client_secret": "x"},
            "imap[0].token_url: missing; generic client_credentials needs it (the token endpoint)",
        ),
        (
            {**MS, "provider": "generic", "flow": "refresh_token", "token_url": "https://t/x"},
            "imap[0].refresh_token: missing; generic refresh_token needs it",
        ),
        ({**MS, "provider": "dropbox"}, 'imap[0].provider: "dropbox" is not valid'),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, account, message):
    found = problems(tmp_path, [account])
    assert any(message in p for p in found), found


def test_google_service_account_key_file(tmp_path: Path):
    key = {"type": "service_account", "client_email": "gw@p.iam", "private_key": "PEM"}
    (tmp_path / "sa.json").write_text(json.dumps(key))
    account = {**BASE, "mailbox": "support@example.com", "auth": "oauth2", "provider": "google"}
    s = load_settings(
        imap_config(tmp_path, [{**account, "service_account_key_file": "sa.json"}]), environ={}
    )
    assert s.imap[0].oauth_flow == "service_account"
    assert json.loads(s.imap[0].service_account_key)["client_email"] == "gw@p.iam"


def test_relay_oauth2_needs_the_mailbox_as_username(tmp_path: Path):
    relay = (
        '[relay]\nmode = "smtp"\nhost = "smtp.office365.com"\nport = 587\nauth = "oauth2"\n'
        'provider = "microsoft"\ntenant = "t"\nclient_id = "c"\nclient_secret = "s"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(write_config(tmp_path, relay), environ={})
    assert any(
        'relay.username: missing; auth = "oauth2" logs in as this mailbox' in p
        for p in err.value.problems
    ), err.value.problems
    s = load_settings(
        write_config(tmp_path, relay + 'username = "support@example.com"\n'),
        environ={"RELAY_PASSWORD": ""},
    )
    assert (s.relay.auth, s.relay.provider, s.relay.username) == (
        "oauth2",
        "microsoft",
        "support@example.com",
    )
