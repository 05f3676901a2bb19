"""The real daemon as systemd runs it: sd_notify, SIGTERM drains without loss, SIGHUP reloads."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import free_port, make_mail, write_config

KNOWLEDGE = Path(__file__).resolve().parents[1] / "examples" / "knowledge"


def start_daemon(config: Path, smtp_port: int, log: Path, env: dict | None = None):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=2) as s:
                s.noop()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()) from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("daemon did not start: " + log.read_text())


@pytest.fixture
def ports(tmp_path):
    return free_port(), free_port()


def config_for(tmp_path: Path, ports, extra: str = "") -> Path:
    smtp_port, http_port = ports
    return write_config(
        tmp_path,
        extra,
        **{
            '"127.0.0.1:2525"': f'"127.0.0.1:{smtp_port}"',
            '"127.0.0.1:8025"': f'"127.0.0.1:{http_port}"',
            "max_sessions = 50": "max_sessions = 100",
        },
    )


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_ready_and_watchdog_reach_the_notify_socket(tmp_path, ports, procs):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(10)
    with sock:
        proc = start_daemon(
            config_for(tmp_path, ports),
            ports[0],
            tmp_path / "daemon.log",
            {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"},
        )
        procs.append(proc)
        seen: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and seen.count("WATCHDOG=1") < 3:
            seen += sock.recv(4096).decode().splitlines()
        assert "READY=1" in seen
        assert any(line.startswith("STATUS=serving SMTP") for line in seen)
        assert seen.count("WATCHDOG=1") >= 3  # pinged every 0.1 s
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        rest = []
        with pytest.raises(TimeoutError):
            sock.settimeout(0.5)
            while True:
                rest += sock.recv(4096).decode().splitlines()
        assert "STOPPING=1" in rest


def test_sigterm_during_a_stream_keeps_every_250_and_refuses_newcomers_with_421(
    tmp_path, ports, procs
):
    smtp_port = ports[0]
    proc = start_daemon(config_for(tmp_path, ports), smtp_port, tmp_path / "daemon.log")
    procs.append(proc)
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
    while len(acked) < 20:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not refused and time.monotonic() < deadline:
        time.sleep(0.02)
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


def _wait(predicate, within: float = 20.0, what: str = ""):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


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


def test_sighup_reloads_the_signature_without_dropping_a_connection(tmp_path, ports, procs):
    config = config_for(tmp_path, ports, ASSISTED)
    log = tmp_path / "daemon.log"
    proc = start_daemon(config, ports[0], log)
    procs.append(proc)
    outbox = tmp_path / "state" / "outbox"
    question = "How do I reset my password?"

    with smtplib.SMTP("127.0.0.1", ports[0], timeout=10) as s:
        s.sendmail(
            "alice@customer.test",
            ["support@example.com"],
            make_mail(sender="alice@customer.test", subject="Password", body=question),
        )
    texts = _wait(lambda: _captured_texts(outbox) if outbox.exists() else [], what="reply 1")
    assert "SIGNATURE-ONE" in texts[0]

    session = smtplib.SMTP("127.0.0.1", ports[0], timeout=10)  # open across the reload
    session.ehlo()
    config.write_text(config.read_text().replace("SIGNATURE-ONE", "SIGNATURE-TWO"))
    proc.send_signal(signal.SIGHUP)
    _wait(lambda: "reloaded" in log.read_text(), what="the reload")
    session.sendmail(
        "bob@customer.test",
        ["support@example.com"],
        make_mail(sender="bob@customer.test", subject="Password", body=question),
    )
    session.quit()
    texts = _wait(lambda: (t := _captured_texts(outbox)) and len(t) >= 2 and t, what="reply 2")
    assert any("SIGNATURE-TWO" in t for t in texts)
    assert sum("SIGNATURE-ONE" in t for t in texts) == 1
    assert proc.poll() is None  # still serving
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
