"""Real mail servers for tests: a private Postfix (the relay) and a private Dovecot (LMTP + IMAP).

Use from a test module:

    from mailservers import mail_servers  # noqa: F401  (the fixture)

    async def test_x(mail_servers):
        relay = mail_servers.relay_settings()          # [relay] pointing at Postfix
        ... send to anyone@customer.test through 127.0.0.1:mail_servers.smtp_port ...
        msgs = await mail_servers.wait_for_messages("alice@customer.test", 1)

Postfix listens on a free loopback port, trusts loopback clients (mynetworks) and hands the
customer domain (`customer.test`) to Dovecot's LMTP through `transport_maps`; every other
domain is discarded. Dovecot stores into maildirs and serves them over IMAP (any user,
password "secret"). Both run from a private folder and are stopped at the end. Without the
binaries (or without root, which both need to switch users) the fixture skips with the reason;
`make test` installs them. The configurations and the start/stop are helpers.mailsystem's,
shared with bench/ingest.py.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.config import RelaySettings

from helpers.mailsystem import (
    DOVECOT,
    PASSWORD,
    POSTFIX,
    dovecot_conf,
    dovecot_prepare,
    dovecot_start,
    dovecot_stop,
    postfix_main_cf,
    postfix_start,
    postfix_stop,
    private_folder,
    run,
    server_port,
    start_with_retry,
)

CUSTOMER_DOMAIN = "customer.test"
IMAP_PASSWORD = PASSWORD


def missing_reason() -> str | None:
    """Why the real servers cannot run here, or None."""
    absent = [p for p in (POSTFIX, DOVECOT) if not os.path.exists(p)]
    if absent:
        return f"needs {', '.join(absent)} (`make test` installs postfix and dovecot as root)"
    if os.geteuid() != 0:
        return "Postfix and Dovecot test instances need root (they switch to their own users)"
    return None


@dataclass
class MailServers:
    """A running Postfix relay and Dovecot mailbox store (see the module docstring)."""

    root: Path
    smtp_port: int  # Postfix smtpd: relay for anyone@customer.test, from loopback only
    lmtp_port: int  # Dovecot LMTP (Postfix delivers here)
    imap_port: int  # Dovecot IMAP: login as the full address, password IMAP_PASSWORD
    domain: str = CUSTOMER_DOMAIN

    def relay_settings(self, **overrides) -> RelaySettings:
        """[relay] settings that send through this Postfix (plain SMTP on loopback)."""
        values = {
            "mode": "smtp",
            "host": "127.0.0.1",
            "port": self.smtp_port,
            "tls": "none",
            "timeout": 10,
        }
        values.update(overrides)
        return RelaySettings(**values)

    def fetch_messages(self, user: str) -> list[EmailMessage]:
        """Every message in user's INBOX, read over IMAP (blocking; see wait_for_messages)."""
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        try:
            imap.login(user, IMAP_PASSWORD)
            imap.select("INBOX", readonly=True)
            _, data = imap.search(None, "ALL")
            out = []
            for num in data[0].split():
                _, parts = imap.fetch(num, "(BODY.PEEK[])")
                raw = next(p[1] for p in parts if isinstance(p, tuple))
                out.append(email.message_from_bytes(raw, policy=email.policy.default))
            return out
        finally:
            try:
                imap.logout()
            except Exception:
                pass

    async def wait_for_messages(
        self, user: str, count: int, within: float = 20.0, settle: bool = False
    ) -> list[EmailMessage]:
        """Poll the mailbox until it holds at least `count` messages; with settle, also until
        Postfix's queue is empty (everything sent to it is delivered or discarded), and return
        what the mailbox holds then: proof that nothing else is on its way."""
        deadline = time.monotonic() + within
        while True:
            msgs = await asyncio.to_thread(self.fetch_messages, user)
            if len(msgs) >= count and (not settle or self.queue_empty()):
                if settle:
                    msgs = await asyncio.to_thread(self.fetch_messages, user)
                return msgs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{user}: {len(msgs)} of {count} messages after {within}s; postfix log:\n"
                    + self.postfix_log()[-3000:]
                )
            await asyncio.sleep(0.05)

    def queue_empty(self) -> bool:
        """No mail in Postfix's queue (maildrop, incoming, active, deferred, hold)."""
        spool = self.root / "spool"
        return not any(
            p.is_file()
            for name in ("maildrop", "incoming", "active", "deferred", "hold")
            for p in (spool / name).rglob("*")
        )

    def postfix_log(self) -> str:
        p = self.root / "postfix.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def flush(self) -> None:
        """Ask Postfix to retry its deferred queue now."""
        run([POSTFIX, "-c", str(self.root / "etc"), "flush"], "postfix flush")


def _start(root: Path) -> MailServers:
    """Dovecot (LMTP + IMAP), then Postfix handing customer.test to that LMTP."""
    servers = MailServers(root, server_port(), server_port(), server_port())
    dc = root / "dovecot"
    dc.mkdir()
    dovecot_prepare(dc)
    conf = dc / "dovecot.conf"
    conf.write_text(
        dovecot_conf(
            dc,
            imap_port=servers.imap_port,
            lmtp_port=servers.lmtp_port,
            postmaster_domain=CUSTOMER_DOMAIN,
        )
    )
    dovecot_start(conf, servers.imap_port)
    try:
        main_cf = postfix_main_cf(
            root,
            hostname="relay.test",
            transports={CUSTOMER_DOMAIN: f"lmtp:inet:127.0.0.1:{servers.lmtp_port}"},
            # retry deferred mail within a test's patience
            extra={
                "queue_run_delay": "1s",
                "minimal_backoff_time": "1s",
                "maximal_backoff_time": "2s",
            },
        )
        postfix_start(root, servers.smtp_port, main_cf)
    except BaseException:
        dovecot_stop(dc)
        raise
    return servers


def _fresh_start() -> MailServers:
    root = private_folder("gw-mailservers-")
    try:
        return _start(root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


@pytest.fixture
def mail_servers() -> Iterator[MailServers]:
    """A fresh Postfix + Dovecot pair for one test (about 0.1 s to start and to stop)."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    servers = start_with_retry(_fresh_start)
    try:
        yield servers
    finally:
        postfix_stop(servers.root)
        dovecot_stop(servers.root / "dovecot")
        shutil.rmtree(servers.root, ignore_errors=True)
