"""The CLI's rough edges, each as an operator meets it (issue 15 item 7).

Commands run in-process through click's runner, or as the installed console script where
the shell's side matters (a closed pipe, a port another program holds).
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.cli.sandbox import DEFAULT_LISTEN
from gateway.config import load_settings, redacted

from conftest import make_mail, running, wait_processed, write_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "mail-gateway"


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_config_show_prints_toml_that_reads_back_with_secrets_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-verysecret")
    config = write_config(
        tmp_path,
        '[hubspot.ticket_properties]\nsource_type = "EMAIL"\n'
        '[signatures]\ndefault = "--\\nExample \\"Support\\"\\tTeam"\n'
        '[signatures.domains]\n"*.example.com" = "Thanks"\n'
        '[[imap]]\nhost = "127.0.0.1"\ntls = "none"\nuser = "u1"\npassword_env = "IMAP_PW"\n'
        'mailbox = "support@example.com"\nsince = 2026-11-01\n'
        '[[imap]]\nhost = "127.0.0.1"\ntls = "none"\nuser = "u2"\npassword_env = "IMAP_PW"\n'
        'mailbox = "sales@example.com"\n',
    )
    monkeypatch.setenv("IMAP_PW", "imap-pw-123456")
    code, out, err = run(config, "config", "show")
    assert code == 0, err
    shown = tomllib.loads(out)  # valid TOML
    secret = ("(set, hidden)", "(not set)")
    expected = {
        section: {k: v for k, v in values.items() if v is not None and v not in secret}
        for section, values in redacted(load_settings(config)).items()
    }
    expected["imap"] = [expected.pop("imap.0"), expected.pop("imap.1")]
    assert shown == expected  # every value but the secrets, which are comments:
    assert "access_token" not in shown["hubspot"]
    assert "[hubspot]\n# access_token = (set, hidden)\n" in out
    assert "# client_secret = (not set)\n" in out
    assert [a["user"] for a in shown["imap"]] == ["u1", "u2"]
    assert out.count("[[imap]]\n# password = (set, hidden)\n") == 2
    assert "imap-pw-123456" not in out
    assert shown["hubspot"]["ticket_properties"] == {"source_type": "EMAIL"}
    assert shown["signatures"]["default"] == '--\nExample "Support"\tTeam'
    assert "verysecret" not in out and "test-secret-not-for-production" not in out


def test_a_closed_pipe_ends_the_command_quietly(config_path: Path):
    """`mail-gateway config show | head -0`: the reader is gone before the first write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.run(
        [SCRIPT, "--config", str(config_path), "config", "show"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 1  # click's exit for EPIPE


@pytest.mark.parametrize("key", ["smtp.listen", "http.listen", "admin.listen"])
def test_a_port_clash_names_the_key(tmp_path: Path, key: str):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    section = key.partition(".")[0]
    taken = {
        "smtp": {'"127.0.0.1:2525"': f'"127.0.0.1:{port}"'},
        "http": {'"127.0.0.1:8025"': f'"127.0.0.1:{port}"'},
        "admin": {'[admin]\nlisten = "127.0.0.1:0"': f'[admin]\nlisten = "127.0.0.1:{port}"'},
    }[section]
    ports = {'"127.0.0.1:2525"': '"127.0.0.1:0"', '"127.0.0.1:8025"': '"127.0.0.1:0"'}
    config = write_config(tmp_path, **(ports | taken))
    try:
        proc = subprocess.run(
            [SCRIPT, "--config", str(config), "serve"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'Error: {key} = "127.0.0.1:{port}": cannot listen: ')
    assert "in use" in last and f"change {key}" in last
    assert "Traceback" not in proc.stderr


def test_config_that_is_a_folder_exits_2(tmp_path: Path):
    code, _out, err = run(tmp_path, "config", "check")
    assert code == 2
    assert err.strip() == f"error: {tmp_path}: is a folder; pass the config file, e.g. " + str(
        tmp_path / "config.toml"
    )


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (["sessions", "show"], "Error: Missing argument 'SESSION_ID'.", "sessions show"),
        (["sesions"], "Error: No such command 'sesions'. Did you mean 'sessions'?", ""),
        (["status", "--bogus"], "Error: No such option '--bogus'.", "status"),
    ],
)
def test_usage_errors_are_two_lines(config_path: Path, args, error: str, hint: str):
    code, out, err = run(config_path, *args)
    assert code == 2 and out == ""
    assert err.splitlines() == [error, f"Try 'cli {hint} -h' for help.".replace("  ", " ")]


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_sessions_list_refuses_a_limit_below_1(config_path: Path, limit: str):
    code, _out, err = run(config_path, "sessions", "list", "--limit", limit)
    assert code == 2
    assert f"Invalid value for '--limit': {limit} is not in the range x>=1." in err


async def test_sessions_show_prints_the_whole_reason_and_handoff_knows_the_daemon(
    settings, config_path: Path
):
    reason = "the customer wrote three times about the same broken invoice and asked for " * 2
    async with running(settings) as gw:

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
                s.sendmail("alice@customer.test", ["support@example.com"], make_mail())

        import asyncio

        await asyncio.to_thread(send)
        await wait_processed(gw, 1)
        code, out, _ = run(config_path, "status")
        assert out.splitlines()[0] == f"daemon: running (pid {os.getpid()})"
        code, out, _ = run(config_path, "status", "--json")
        assert json.loads(out)["daemon"] == {"running": True, "pid": os.getpid()}
        code, out, _ = run(config_path, "handoff", "1", "--reason", "asked twice")
        assert out.strip() == (
            f"session 1: handoff queued (asked twice); the running daemon (pid {os.getpid()}) "
            "hands it off now"
        )
    code, out, _ = run(config_path, "status")
    assert out.splitlines()[0].startswith("daemon: not running (nothing holds ")
    code, out, _ = run(config_path, "status", "--json")
    assert json.loads(out)["daemon"] == {"running": False, "pid": None}
    # a second conversation, handed off while no daemon runs
    async with running(settings) as gw:

        def send_other() -> None:
            with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
                mail = make_mail(sender="bob@customer.test", subject="Invoice")
                s.sendmail("bob@customer.test", ["support@example.com"], mail)

        await asyncio.to_thread(send_other)
        await wait_processed(gw, 2)
    code, out, _ = run(config_path, "handoff", "2", "--reason", reason.strip())
    assert code == 0
    assert out.strip().endswith(
        "; the daemon is not running: it hands it off once `mail-gateway serve` runs"
    )
    code, out, _ = run(config_path, "sessions", "show", "2")
    assert f"  reason: {reason.strip()}" in out.splitlines()  # under "hubspot:", whole


def test_outbox_show_takes_a_unique_prefix(tmp_path: Path):
    config = write_config(tmp_path, '[relay]\nmode = "capture"\n')
    outbox = tmp_path / "state" / "outbox"
    outbox.mkdir(parents=True)
    mail = make_mail(subject="Your parcel")
    (outbox / "20261129T101010-aaaa1111.eml").write_bytes(mail)
    (outbox / "20261129T101010-aaab2222.eml").write_bytes(make_mail(subject="Other"))
    code, out, err = run(config, "outbox", "show", "20261129T101010-aaaa")
    assert code == 0, err
    assert "Subject: Your parcel" in out
    code, out, _ = run(config, "outbox", "show", "20261129T101010-aaaa", "--headers")
    assert "subject: Your parcel" in out
    code, _out, err = run(config, "outbox", "show", "20261129T101010-aaa")
    assert code == 1
    assert "2 captured mails start with '20261129T101010-aaa'" in err
    code, _out, err = run(config, "outbox", "show", "nothing-like-it")
    assert code == 1 and "no captured mail 'nothing-like-it'" in err


def test_imap_status_without_imap_accounts_says_so(config_path: Path):
    code, out, _ = run(config_path, "imap", "status")
    assert code == 0
    assert out.strip() == (
        f"no IMAP accounts are configured (add an [[imap]] table to {config_path})"
    )


def test_sandbox_listen_default_matches_readme_and_config():
    readme = (ROOT / "README.md").read_text()
    settings_default = load_settings(ROOT / "config.example.toml").hubspot.sandbox_listen
    assert DEFAULT_LISTEN == str(settings_default) == "127.0.0.1:8026"
    assert f"`{DEFAULT_LISTEN}`" in readme
    code_help = CliRunner().invoke(cli, ["sandbox", "--help"]).stdout
    assert f"[default: {DEFAULT_LISTEN}]" in code_help


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[admin]\nlisten = "0.0.0.0:8027"\n', "admin.listen"),
        ("[sandbox]\nallow_public = true\n", "sandbox.admin_token"),
    ],
)
def test_config_check_refuses_an_open_admin_or_sandbox_without_a_token(
    tmp_path: Path, extra: str, key: str, monkeypatch
):
    text = write_config(tmp_path).read_text().replace('[admin]\nlisten = "127.0.0.1:0"\n', "")
    config = tmp_path / "config.toml"
    config.write_text(text + extra)
    code, _out, err = run(config, "config", "check")
    assert code == 2
    assert err.startswith(f"error: config.toml: {key}: ")
    env = {
        "admin.listen": "MAIL_GATEWAY_ADMIN_TOKEN",
        "sandbox.admin_token": "MAIL_GATEWAY_SANDBOX_TOKEN",
    }
    monkeypatch.setenv(env[key], "a-t0ken-of-sorts")
    _code, _out, err = run(config, "config", "check")
    assert f"config.toml: {key}: " not in err, err  # (live mode still lacks the app's ids)


def test_sandbox_off_loopback_needs_a_token():
    result = CliRunner().invoke(cli, ["sandbox", "--listen", "0.0.0.0:0"])
    assert result.exit_code == 2
    assert "Invalid value for --listen: 0.0.0.0 is not a loopback address" in result.stderr
    assert "MAIL_GATEWAY_SANDBOX_TOKEN" in result.stderr
