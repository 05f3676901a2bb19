"""The real daemon as systemd runs it: sd_notify, SIGTERM drains without loss, SIGHUP reloads,
and on port 0 it reports the ports it bound."""

from __future__ import annotations

import email
import email.policy
import json
import signal
import smtplib
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.hubspot import api
from gateway.hubspot.setup import WEBHOOK_PATH

from conftest import make_mail, write_config
from helpers.daemon import Daemon
from helpers.waiting import wait_until

KNOWLEDGE = Path(__file__).resolve().parents[1] / "examples" / "knowledge"


@pytest.fixture
def daemon(tmp_path: Path):
    """Makes the test's daemon (the shared launcher: port 0, ports read from READY); extra
    config text and environment as given. Killed at the end."""
    made: list[Daemon] = []

    def make(extra: str = "", env: dict[str, str] | None = None, **replace: str) -> Daemon:
        def config(smtp_port: int, http_port: int) -> Path:
            return write_config(
                tmp_path,
                extra,
                **{
                    '"127.0.0.1:2525"': f'"127.0.0.1:{smtp_port}"',
                    '"127.0.0.1:8025"': f'"127.0.0.1:{http_port}"',
                    "max_sessions = 50": "max_sessions = 100",
                    **replace,
                },
            )

        made.append(Daemon(config, tmp_path / "daemon.log", env))
        return made[-1]

    yield make
    for d in made:
        d.kill9()


def test_ready_and_watchdog_reach_the_notify_socket(daemon):
    d = daemon(env={"WATCHDOG_USEC": "200000"})
    d.start()
    wait_until(lambda: d.received(wait=0.1).count("WATCHDOG=1") >= 3, 10, "3 watchdog pings")
    assert "READY=1" in d.messages  # pinged every 0.1 s, READY first
    status = (
        f"STATUS=serving SMTP on 127.0.0.1:{d.smtp_port}, HTTP on 127.0.0.1:{d.http_port}, "
        f"admin on 127.0.0.1:{d.admin_port}"
    )
    assert status in d.messages
    assert d.stop() == 0
    assert "STOPPING=1" in d.messages


def test_on_port_0_the_daemon_reports_the_ports_it_bound(daemon, tmp_path):
    """Listeners on port 0: the ports in READY answer SMTP and HTTP, and the sandbox sends its
    webhooks to the HTTP port bound (public_url unset: derived from it)."""
    d = daemon(**{'mode = "live"': 'mode = "sandbox"\nsandbox_listen = "127.0.0.1:0"'})
    d.start()
    assert 0 not in (d.smtp_port, d.http_port, d.sandbox_port)
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=10) as s:
        assert s.noop()[0] == 250
    with urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/healthz", timeout=10) as r:
        assert r.status == 200
    sandbox = f"http://127.0.0.1:{d.sandbox_port}"
    with urllib.request.urlopen(f"{sandbox}/_sandbox/info", timeout=10) as r:
        info = json.load(r)
    public_url = f"http://127.0.0.1:{d.http_port}"
    assert info["webhookTargetUrl"] == public_url + "/hubspot/webhook"
    keys = f"hapikey={info['developerApiKey']}&appId={info['appId']}"
    with urllib.request.urlopen(f"{sandbox}{api.path('channels_list')}?{keys}", timeout=10) as r:
        [channel] = json.load(r)["results"]  # registered by the daemon's HubSpot setup
    assert channel["webhookUrl"] == public_url + WEBHOOK_PATH
    log = d.tail()
    assert f"HubSpot sandbox on 127.0.0.1:{d.sandbox_port}" in log
    assert f"public URL {public_url};" in log
    # a restart binds the same ports: what clients and the sandbox were told stays true
    ports = (d.smtp_port, d.http_port)
    d.kill9()
    d.start()
    assert (d.smtp_port, d.http_port) == ports
    assert d.stop() == 0


def test_sigterm_during_a_stream_keeps_every_250_and_refuses_newcomers_with_421(
    daemon, tmp_path
):
    d = daemon()
    d.start()
    proc, smtp_port = d.proc, d.smtp_port
    assert proc is not None
    acked: list[str] = []
    refused: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        for i in range(10_000):
            if stop.is_set():
                return
            mid = f"c{n}-{i}@customer.test"
            try:
                with smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as s:
                    s.sendmail(
                        "a@customer.test", ["support@example.com"], make_mail(message_id=mid)
                    )
                with lock:
                    acked.append(mid)
            except smtplib.SMTPConnectError as exc:
                with lock:
                    refused.append(exc.smtp_code)
            except (OSError, smtplib.SMTPException):
                if proc.poll() is not None:
                    return
            time.sleep(0.01)

    # a slow sender is in DATA when SIGTERM comes: it may finish, and meanwhile the listener
    # stays open and every newcomer is told 421
    slow = smtplib.SMTP("127.0.0.1", smtp_port, timeout=20)
    slow.ehlo()
    slow.mail("slow@customer.test")
    slow.rcpt("support@example.com")
    code, _ = slow.docmd("DATA")
    assert code == 354
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 20, 30, "20 acknowledged mails")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: refused, 10, "a newcomer refused")
    body = make_mail(message_id="slow@customer.test").replace(b"\r\n.", b"\r\n..")
    slow.send(body + b".\r\n")
    code, text = slow.getreply()
    assert code == 250, text
    acked.append("slow@customer.test")
    slow.close()
    assert proc.wait(timeout=30) == 0
    stop.set()
    for t in threads:
        t.join()

    assert refused and set(refused) == {421}, refused
    conn = sqlite3.connect(tmp_path / "state" / "gateway.db")
    try:
        stored = {r[0] for r in conn.execute("SELECT message_id FROM raw_mails")}
    finally:
        conn.close()
    missing = [m for m in acked if m not in stored]
    assert not missing, f"{len(missing)} acknowledged mails lost"


def _captured_texts(outbox: Path) -> list[str]:
    out = []
    for f in sorted(outbox.glob("*.eml")):
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        out.append(msg.get_body(preferencelist=("plain",)).get_content())
    return out


ASSISTED = f"""
[relay]
mode = "capture"

[assistant]
backend = "knowledge"
knowledge_dir = "{KNOWLEDGE}"
debounce = 0
rate_limit = 10

[signatures]
default = "SIGNATURE-ONE"
"""


def test_sighup_reloads_the_signature_without_dropping_a_connection(daemon, tmp_path):
    d = daemon(ASSISTED)
    d.start()
    config, log, proc = d.configure(), d.log, d.proc
    assert proc is not None
    outbox = tmp_path / "state" / "outbox"
    question = "How do I reset my password?"

    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=10) as s:
        s.sendmail(
            "alice@customer.test",
            ["support@example.com"],
            make_mail(sender="alice@customer.test", subject="Password", body=question),
        )
    texts = wait_until(lambda: _captured_texts(outbox) if outbox.exists() else [], 20, "reply 1")
    assert "SIGNATURE-ONE" in texts[0]

    session = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=10)  # open across the reload
    session.ehlo()
    config.write_text(config.read_text().replace("SIGNATURE-ONE", "SIGNATURE-TWO"))
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded" in log.read_text(), 20, "the reload")
    session.sendmail(
        "bob@customer.test",
        ["support@example.com"],
        make_mail(sender="bob@customer.test", subject="Password", body=question),
    )
    session.quit()
    texts = wait_until(lambda: (t := _captured_texts(outbox)) and len(t) >= 2 and t, 20, "reply 2")
    assert any("SIGNATURE-TWO" in t for t in texts)
    assert sum("SIGNATURE-ONE" in t for t in texts) == 1
    assert proc.poll() is None  # still serving
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
