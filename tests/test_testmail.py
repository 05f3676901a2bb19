"""`mail-gateway send-test` and `receive-test` (issue 15 item 4): a test mail through the
configured relay (an aiosmtpd relay over loopback, with AUTH) with its SMTP transcript, and a
mail into the running daemon that becomes a conversation and is removed again."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
from pathlib import Path

import dkim
import pytest
from aiosmtpd.smtp import SMTP as SMTPProtocol
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner

from gateway.cli import cli
from gateway.service import Gateway

from conftest import make_mail, wait_processed, write_config
from helpers.waiting import wait_idle
from mailservers import mail_servers  # noqa: F401  (fixture)

PASSWORD = "relay-pa55word"


class Relay:
    """A relay that wants AUTH (PLAIN/LOGIN, as user gw) and keeps what it accepts; a
    recipient at refused.test gets 550."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.port = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.test"):
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued as 4F1A2"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"gw" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 535 itself


@pytest.fixture
async def relay():
    handler = Relay()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTPProtocol(
            handler,
            hostname="relay.test",
            authenticator=authenticate,
            auth_required=False,  # offered; the client logs in because relay.username is set
            auth_require_tls=False,  # loopback; STARTTLS is the relay's business, not this test's
        ),
        "127.0.0.1",
        0,
    )
    handler.port = server.sockets[0].getsockname()[1]
    try:
        yield handler
    finally:
        server.close()
        await server.wait_closed()


def relay_config(tmp_path: Path, port: int, extra: str = "") -> Path:
    return write_config(
        tmp_path,
        f"""
[relay]
mode = "smtp"
host = "127.0.0.1"
port = {port}
tls = "none"
username = "gw"
password_file = "relay-password"
timeout = 10
{extra}
""",
    )


async def invoke(config: Path, *args: str):
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["--config", str(config), *args],
        env={"CREDENTIALS_DIRECTORY": None, "RELAY_PASSWORD": None},
    )
    return result.exit_code, result.stdout, result.stderr


async def test_send_test_through_the_relay_prints_the_transcript(tmp_path: Path, relay):
    (tmp_path / "relay-password").write_text(PASSWORD)
    config = relay_config(tmp_path, relay.port)
    code, out, err = await invoke(config, "send-test", "you@customer.test")
    assert code == 0, out + err

    (mail_from, rcpts, raw) = relay.received[0]
    assert (mail_from, rcpts) == ("support@example.com", ["you@customer.test"])
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "mail-gateway send-test" and msg["To"] == "you@customer.test"
    assert msg["Message-ID"].endswith("@gw.example.com>")

    lines = out.splitlines()
    assert (
        lines[0]
        == f"relay 127.0.0.1:{relay.port} (tls none), from support@example.com to you@customer.test"
    )
    assert lines[1].startswith("S: 220 relay.test")
    assert "C: ehlo gw.example.com" in lines
    assert "C: AUTH PLAIN ***" in lines
    assert "S: 235 2.7.0 Authentication successful" in lines
    assert "C: mail FROM:<support@example.com> size=" + str(len(raw) + 2) in lines or any(
        ln.startswith("C: mail FROM:<support@example.com>") for ln in lines
    )
    assert "C: rcpt TO:<you@customer.test>" in lines
    assert "S: 354 End data with <CR><LF>.<CR><LF>" in lines
    assert any(ln.startswith("C: <the message, ") for ln in lines)
    assert "S: 250 2.0.0 Ok: queued as 4F1A2" in lines
    assert lines[-1] == "sent: the relay accepted the mail for you@customer.test"
    # neither the password nor its base64 forms, nor the body, are shown
    plain = base64.b64encode(f"\0gw\0{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, plain, base64.b64encode(PASSWORD.encode()).decode()):
        assert secret not in out
    assert "test mail from mail-gateway" not in out


async def test_send_test_signs_with_dkim_when_configured(tmp_path: Path, relay):
    from dkim import dknewkey

    key = tmp_path / "dkim.pem"
    dknewkey.GenRSAKeys(str(key), verbose=False)
    dknewkey.ExtractRSADnsPublicKey(str(key), str(tmp_path / "dkim.txt"), verbose=False)
    (tmp_path / "relay-password").write_text(PASSWORD)
    config = relay_config(
        tmp_path,
        relay.port,
        'dkim_selector = "sel"\ndkim_domain = "example.com"\ndkim_key_file = "dkim.pem"',
    )
    code, out, err = await invoke(config, "send-test", "you@customer.test")
    assert code == 0, out + err
    raw = relay.received[0][2]
    record = (tmp_path / "dkim.txt").read_bytes()
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)


async def test_send_test_reports_a_refusal_and_a_wrong_password(tmp_path: Path, relay):
    (tmp_path / "relay-password").write_text(PASSWORD)
    config = relay_config(tmp_path, relay.port)
    code, out, err = await invoke(config, "send-test", "nobody@refused.test")
    assert code == 1
    assert "S: 550 5.1.1 <nobody@refused.test>: Recipient address rejected" in out
    assert "Error: the relay refused: 550 5.1.1" in err and "Traceback" not in err

    (tmp_path / "relay-password").write_text("wrong")
    code, out, err = await invoke(config, "send-test", "you@customer.test")
    assert code == 1 and "the relay refused: 535" in err, out
    assert relay.received == []


async def test_send_test_names_relay_username_when_the_relay_offers_no_auth(tmp_path: Path):
    """A relay that offers no AUTH while relay.username is set (typically: AUTH only after
    STARTTLS) is one line naming the keys, not smtplib's "SMTP AUTH extension not supported"."""
    handler = Relay()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTPProtocol(handler, hostname="relay.test"), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        (tmp_path / "relay-password").write_text(PASSWORD)
        code, out, err = await invoke(
            relay_config(tmp_path, port), "send-test", "you@customer.test"
        )
    finally:
        server.close()
        await server.wait_closed()
    assert code == 1 and "C: ehlo gw.example.com" in out
    assert "offers no AUTH but relay.username is set ('gw')" in err
    assert 'relay.tls = "starttls"' in err and "Traceback" not in err
    assert handler.received == []


@pytest.mark.slow
async def test_send_test_through_a_real_postfix_into_the_mailbox(
    tmp_path: Path,
    mail_servers,  # noqa: F811
):
    config = write_config(
        tmp_path,
        f"""
[relay]
mode = "smtp"
host = "127.0.0.1"
port = {mail_servers.smtp_port}
tls = "none"
""",
    )
    code, out, err = await invoke(config, "send-test", "bob@customer.test")
    assert code == 0, out + err
    assert any(ln.startswith("S: 220 ") and "ESMTP Postfix" in ln for ln in out.splitlines())
    assert any(ln.startswith("S: 250 2.0.0 Ok: queued as ") for ln in out.splitlines())
    (msg,) = await mail_servers.wait_for_messages("bob@customer.test", 1)
    assert msg["Subject"] == "mail-gateway send-test"
    assert msg["From"] == "support@example.com"


async def test_send_test_in_capture_mode_says_nothing_goes_out(tmp_path: Path):
    config = write_config(tmp_path, '\n[relay]\nmode = "capture"\n')
    code, _out, err = await invoke(config, "send-test", "you@customer.test")
    assert code == 1 and 'relay.mode is "capture": nothing goes out' in err


async def test_receive_test_against_the_running_daemon(gateway: Gateway, config_path: Path):
    # a real conversation first: the probe must leave it alone
    def send():
        import smtplib

        with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as s:
            s.sendmail("alice@customer.test", ["support@example.com"], make_mail())

    await asyncio.to_thread(send)
    await wait_processed(gateway, 1)
    await wait_idle(gateway)  # its hooks ran: what the store holds now stays until the probe

    def counts(db):
        tables = ("raw_mails", "conversations", "messages", "participants", "message_ids")
        rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
        return rows | {"jobs": db.execute("SELECT id, kind FROM jobs ORDER BY id").fetchall()}

    before = await gateway.store.read(counts)
    code, out, err = await invoke(
        config_path, "receive-test", "--server", f"127.0.0.1:{gateway.smtp_port}"
    )
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith(f"accepted by 127.0.0.1:{gateway.smtp_port} for support@example.com")
    assert lines[1].startswith("stored as raw mail 2 in conversation 2")
    assert lines[2].startswith("removed again (") and "conversations 1" in lines[2]
    # every trace is gone (its process_mail job too), the real conversation is untouched, and
    # the probe queued nothing for the assistant or HubSpot
    assert await gateway.store.read(counts) == before


async def test_receive_test_keep_and_no_daemon(gateway: Gateway, config_path: Path, tmp_path):
    code, out, _ = await invoke(
        config_path, "receive-test", "--keep", "--server", f"127.0.0.1:{gateway.smtp_port}"
    )
    assert code == 0 and "removed" not in out
    subjects = await gateway.store.read(
        lambda db: [r[0] for r in db.execute("SELECT subject FROM conversations")]
    )
    assert subjects == ["mail-gateway receive-test"]

    from conftest import dead_port

    code, _out, err = await invoke(
        config_path, "receive-test", "--server", f"127.0.0.1:{dead_port()}"
    )
    assert code == 1 and "is the daemon running" in err
