"""The CLI as an operator uses it: real config files, a real store, `--json` output parsed."""

from __future__ import annotations

import asyncio
import json
import smtplib
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import settings_table
from gateway.service import Gateway

from conftest import make_mail, wait_processed, write_config

ROOT = Path(__file__).resolve().parents[1]


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


async def _send(gw: Gateway, raw: bytes) -> None:
    def go():
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.sendmail("alice@customer.test", ["support@example.com"], raw)

    await asyncio.to_thread(go)


async def test_status_and_sessions(gateway: Gateway, config_path: Path):
    await _send(gateway, make_mail(message_id="cli1@customer.test"))
    await _send(gateway, make_mail(message_id="cli2@customer.test", subject="Second question"))
    await wait_processed(gateway, 2)

    code, out, _ = run(config_path, "status", "--json")
    assert code == 0
    st = json.loads(out)
    assert st["mails_accepted_today"] == 2
    assert st["conversations"] == 2
    assert st["quarantined"] == 0
    assert st["last_mail"]["mailbox"] == "support@example.com"

    code, out, _ = run(config_path, "sessions", "list", "--json")
    sessions = json.loads(out)
    assert {s["subject"] for s in sessions} == {"Help with my order", "Second question"}

    sid = sessions[0]["id"]
    code, out, _ = run(config_path, "sessions", "show", str(sid), "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["messages"][0]["direction"] == "in"
    assert "annotations" in shown["messages"][0]

    code, out, _ = run(config_path, "sessions", "show", str(sid))
    assert code == 0 and "subject:" in out

    code, out, _ = run(config_path, "sessions", "list")
    assert code == 0 and "Second question" in out


def test_sessions_show_unknown_id_is_one_line(config_path: Path):
    code, _out, err = run(config_path, "sessions", "show", "999")
    assert code == 1
    assert err.strip() == "Error: session 999: no such session (see `mail-gateway sessions list`)"


async def test_quarantine_list_and_retry(gateway: Gateway, config_path: Path, monkeypatch):
    import gateway.jobs.process_mail as process

    def broken(*a, **k):
        raise ValueError("parser exploded")

    # a parser bug, as a strange mail causes (in a thread here: a monkeypatch does not reach
    # the parser process)
    gateway.processor.executor = None
    monkeypatch.setattr(process, "parse_for_store", broken)
    await _send(gateway, make_mail(message_id="bad@customer.test"))
    await wait_processed(gateway, 1)
    code, out, _ = run(config_path, "quarantine", "list", "--json")
    rows = json.loads(out)
    assert [r["error"] for r in rows] == ["ValueError: parser exploded"]
    # the mails behind it keep flowing
    monkeypatch.undo()
    await _send(gateway, make_mail(message_id="good@customer.test"))
    await wait_processed(gateway, 2)

    code, out, _ = run(config_path, "quarantine", "retry", str(rows[0]["id"]))
    assert code == 0 and "queued again" in out
    gateway.worker.wake()
    await wait_processed(gateway, 2)
    code, out, _ = run(config_path, "quarantine", "list", "--json")
    assert json.loads(out) == []
    code, out, _ = run(config_path, "status", "--json")
    assert json.loads(out)["conversations"] == 2

    code, _, err = run(config_path, "quarantine", "retry", str(rows[0]["id"]))
    assert code == 1 and "already retried" in err


def test_config_check_reports_every_problem(tmp_path: Path):
    bad = write_config(
        tmp_path,
        **{
            '"127.0.0.1:2525"': '"127.0.0.1:99999"',
            "max_recipients = 5": 'max_recipients = "five"\nmax_recipents = 3',
        },
    )
    code, _out, err = run(bad, "config", "check")
    assert code == 2
    lines = err.strip().splitlines()
    assert (
        'error: config.toml: smtp.listen: "127.0.0.1:99999" is not a valid port (0-65535)' in lines
    )
    assert any("smtp.max_recipients" in ln and "whole number" in ln for ln in lines)
    assert any("smtp.max_recipents: unknown key" in ln for ln in lines)
    assert "Traceback" not in err


def test_an_unknown_key_lists_the_file_form_of_secrets(tmp_path: Path):
    # README and the example name sandbox.admin_token_file; the list of known keys says so
    bad = write_config(tmp_path, '\n[sandbox]\nlisten = "0.0.0.0:8026"\n')
    code, _out, err = run(bad, "config", "check")
    assert code == 2
    assert (
        "sandbox.listen: unknown key (known: allow_public, admin_token (or admin_token_file))"
        in err
    )


def test_config_check_missing_file(tmp_path: Path):
    code, _out, err = run(tmp_path / "nope.toml", "config", "check")
    assert code == 2 and "no such file" in err and "Traceback" not in err


def test_config_show_redacts_secrets(config_path: Path, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-verysecret")
    code, out, _ = run(config_path, "config", "show", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["hubspot"]["access_token"] == "(set, hidden)"
    assert data["gateway"]["secret"] == "(set, hidden)"
    assert "verysecret" not in out and "test-secret" not in out
    code, out, _ = run(config_path, "config", "show")
    assert "verysecret" not in out and "[smtp]" in out


def test_example_config_runs_and_documents_every_key():
    example = ROOT / "config.example.toml"
    code, _out, err = run(example, "config", "check")
    assert code == 0, err
    text = example.read_text()
    for key, _default, help_text in settings_table():
        section, name = key.split(".")
        assert f"[{section}]" in text
        assert name in text, f"config.example.toml does not document {key} ({help_text})"


def test_console_script_installed():
    out = subprocess.run(
        [Path(sys.executable).parent / "mail-gateway", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "sessions" in out.stdout
