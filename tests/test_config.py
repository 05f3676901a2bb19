"""Loading and validating settings: messages an admin can act on, secrets from env or files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings

from conftest import write_config


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path):
    sub = tmp_path / "etc"
    sub.mkdir()
    s = load_settings(write_config(sub))
    assert s.gateway.state_dir == (sub / "state").resolve()
    assert s.db_path == (sub / "state" / "gateway.db").resolve()


def test_secret_from_env_beats_file(tmp_path: Path):
    path = write_config(tmp_path)
    s = load_settings(path, environ={"MAIL_GATEWAY_SECRET": "from-env"})
    assert s.gateway.secret == "from-env"
    assert "from-env" not in repr(s)


def test_secret_from_file_and_systemd_credentials(tmp_path: Path):
    (tmp_path / "token").write_text("pat-123\n")
    path = write_config(tmp_path, **{'mode = "live"': 'mode = "live"\naccess_token_file = "token"'})
    assert load_settings(path, environ={}).hubspot.access_token == "pat-123"

    # systemd's LoadCredential= puts the file in $CREDENTIALS_DIRECTORY
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hubspot-token").write_text("pat-456")
    path.write_text(path.read_text().replace('"token"', '"hubspot-token"'))
    s = load_settings(path, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert s.hubspot.access_token == "pat-456"


def test_unreadable_secret_file_is_reported(tmp_path: Path):
    path = write_config(
        tmp_path, **{'mode = "live"': 'mode = "live"\naccess_token_file = "missing"'}
    )
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert err.value.problems == [
        'config.toml: hubspot.access_token_file: "missing" cannot be read '
        f"(No such file or directory: looked for {tmp_path}/missing); a credential name: the "
        f"unit's LoadCredential= provides it, a shell reads {tmp_path}/credentials/missing (as "
        "root) or --credentials-dir DIR"
    ]
    # with a credentials folder beside the config, both places it looked are named
    (tmp_path / "credentials").mkdir()
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert (
        f"(No such file or directory: looked for {tmp_path}/missing or "
        f"{tmp_path}/credentials/missing)" in err.value.problems[0]
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '"127.0.0.1:2525"',
            '"127.0.0.1:99999"',
            'smtp.listen: "127.0.0.1:99999" is not a valid port (0-65535)',
        ),
        (
            '"127.0.0.1:2525"',
            '"localhost"',
            'smtp.listen: "localhost" is not valid: expected "HOST:PORT"',
        ),
        (
            'mode = "live"',
            'mode = "prod"',
            'hubspot.mode: "prod" is not valid: expected one of sandbox, live',
        ),
        ("max_sessions = 50", "max_sessions = 0", "smtp.max_sessions: 0 must be at least 1"),
        (
            '"support@example.com", ',
            '"not-an-address", ',
            'smtp.addresses: "not-an-address" is not an email address',
        ),
        (
            '"support@example.com", ',
            '"sup..port@example.com", ',
            'smtp.addresses: "sup..port@example.com" is not an email address',
        ),
        ("[worker]", "[workers]", "[workers]: unknown section"),
    ],
)
def test_bad_values_name_file_key_value_and_expectation(tmp_path, old, new, message):
    path = write_config(tmp_path, **{old: new})
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert any(p.startswith("config.toml: " + message) for p in err.value.problems), (
        err.value.problems
    )


def test_no_support_address_refuses_to_start(tmp_path: Path):
    path = write_config(
        tmp_path,
        **{
            'addresses = ["support@example.com", "sales@example.com"]': "addresses = []",
            'domains = ["help.example.org"]': "domains = []",
        },
    )
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "never relays" in err.value.problems[0]


def test_invalid_toml(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text("[smtp\nlisten = 1")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.problems[0].startswith("config.toml: not valid TOML")
