"""[[imap]] accounts in the config: defaults, secrets, and one-line messages for mistakes."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings, redacted

from dovecot import imap_config

GOOD = {
    "host": "imap.example.net",
    "user": "support@example.com",
    "password": "pw",
    "mailbox": "support@example.com",
}


def problems(tmp_path: Path, accounts: list[dict], environ=None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_settings(imap_config(tmp_path, accounts), environ=environ or {})
    return err.value.problems


def test_defaults_and_derived_port(tmp_path: Path):
    s = load_settings(imap_config(tmp_path, [GOOD]), environ={})
    (a,) = s.imap
    assert (a.tls, a.real_port, a.folders, a.after, a.idle) == (
        "implicit",
        993,
        ["INBOX"],
        "seen",
        True,
    )
    assert a.key == "support@example.com@imap.example.net:993"
    assert "pw" not in repr(a)
    assert redacted(s)["imap.0"]["password"] == "(set, hidden)"


def test_password_from_env_or_file_and_since_date(tmp_path: Path):
    (tmp_path / "imap-pw").write_text("from-file\n")
    accounts = [
        {**GOOD, "password": None, "password_env": "IMAP_PW", "since": "2026-01-31"},
        {**GOOD, "password": None, "password_file": "imap-pw", "tls": "starttls"},
    ]
    for a in accounts:
        del a["password"]
    s = load_settings(imap_config(tmp_path, accounts), environ={"IMAP_PW": "from-env"})
    assert [a.password for a in s.imap] == ["from-env", "from-file"]
    assert s.imap[0].since == datetime.date(2026, 1, 31)
    assert s.imap[1].real_port == 143


def test_plaintext_to_a_remote_host_is_refused(tmp_path: Path):
    assert problems(tmp_path, [{**GOOD, "tls": "none"}]) == [
        'config.toml: imap[0].tls: "none" is only allowed for a loopback host, not '
        '"imap.example.net" (use implicit or starttls)'
    ]
    # loopback is fine (a local Dovecot, an SSH tunnel)
    load_settings(imap_config(tmp_path, [{**GOOD, "host": "127.0.0.1", "tls": "none"}]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tls": "maybe"}, 'imap[0].tls: "maybe" is not valid: expected one of implicit, '),
        ({"after": "archive"}, 'imap[0].after: "archive" is not valid: expected one of seen'),
        ({"after": "move"}, 'imap[0].move_to: missing; after = "move" needs a folder'),
        ({"mailbox": "other@elsewhere.test"}, 'imap[0].mailbox: "other@elsewhere.test" is not'),
        ({"host": ""}, "imap[0].host: "),
        ({"password": ""}, "imap[0].password: not set; set password_file or password_env"),
        ({"password_env": "NOPE"}, 'imap[0].password_env: "NOPE" is not set in the environment'),
        ({"port": "993"}, 'imap[0].port: "993" is not valid: expected a whole number'),
        ({"since": "last week"}, 'imap[0].since: "last week" is not valid: expected a date'),
        ({"folders": []}, "imap[0].folders: empty; list at least one folder"),
        ({"ca_file": "missing.pem"}, "imap[0].ca_file: "),
        ({"idle_timeout": 5}, "imap[0].idle_timeout: unknown key (known: host, port"),
    ],
)
def test_mistakes_are_one_line_each(tmp_path: Path, change: dict, message: str):
    found = problems(tmp_path, [{**GOOD, **change}])
    assert any(p.startswith("config.toml: " + message) for p in found), found


def test_imap_must_be_an_array_of_tables(tmp_path: Path):
    path = imap_config(tmp_path, [], extra='\n[imap]\nhost = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.problems == ["config.toml: imap: expected [[imap]] tables (one per mailbox)"]
