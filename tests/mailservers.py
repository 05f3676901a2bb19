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
`make test` installs them.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.config import RelaySettings

from conftest import free_port

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
CUSTOMER_DOMAIN = "customer.test"
IMAP_PASSWORD = "secret"

_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
myhostname = relay.test
mydestination =
relay_domains =
smtpd_relay_restrictions = permit_mynetworks, reject
transport_maps = inline:{{ {domain}=lmtp:inet:127.0.0.1:{lmtp} }}
default_transport = discard:
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
smtputf8_enable = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

_DOVECOT_CONF = """\
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {d}/base
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = gwtest-{port}
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 8
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{domain}
}}
"""


def missing_reason() -> str | None:
    """Why the real servers cannot run here, or None."""
    absent = [p for p in (POSTFIX, DOVECOT, DOVEADM) if not os.path.exists(p)]
    if absent:
        return f"needs {', '.join(absent)} (`make test` installs postfix and dovecot as root)"
    if os.geteuid() != 0:
        return "Postfix and Dovecot test instances need root (they switch to their own users)"
    return None


def _run(args: list[str], what: str) -> None:
    # output to a file, not a pipe: the daemons keep inherited pipes open and we would hang
    with tempfile.TemporaryFile() as log:
        code = subprocess.run(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=60
        ).returncode
        if code != 0:
            log.seek(0)
            raise RuntimeError(f"{what} failed ({code}): {log.read().decode(errors='replace')}")


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
        self, user: str, count: int, within: float = 20.0, settle: float = 0.0
    ) -> list[EmailMessage]:
        """Poll the mailbox until it holds at least `count` messages; with settle > 0, wait
        that long more and return whatever is there then (to prove nothing else arrives)."""
        deadline = time.monotonic() + within
        while True:
            msgs = await asyncio.to_thread(self.fetch_messages, user)
            if len(msgs) >= count:
                if settle:
                    await asyncio.sleep(settle)
                    msgs = await asyncio.to_thread(self.fetch_messages, user)
                return msgs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{user}: {len(msgs)} of {count} messages after {within}s; postfix log:\n"
                    + self.postfix_log()[-3000:]
                )
            await asyncio.sleep(0.2)

    def postfix_log(self) -> str:
        p = self.root / "postfix.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def flush(self) -> None:
        """Ask Postfix to retry its deferred queue now."""
        _run([POSTFIX, "-c", str(self.root / "etc"), "flush"], "postfix flush")


def _start(root: Path) -> MailServers:
    smtp_port, lmtp_port, imap_port = free_port(), free_port(), free_port()
    servers = MailServers(root, smtp_port, lmtp_port, imap_port)
    dc = root / "dovecot"
    for sub in ("base", "state", "mail"):
        (dc / sub).mkdir(parents=True)
    shutil.chown(dc / "mail", "mail", "mail")
    (dc / "dovecot.conf").write_text(
        _DOVECOT_CONF.format(
            d=dc,
            port=imap_port,
            imap=imap_port,
            lmtp=lmtp_port,
            password=IMAP_PASSWORD,
            domain=CUSTOMER_DOMAIN,
        )
    )
    _run([DOVECOT, "-c", str(dc / "dovecot.conf")], "dovecot start")
    etc = root / "etc"
    for sub in ("etc", "spool", "data"):
        (root / sub).mkdir()
    shutil.chown(root / "data", "postfix")
    (etc / "main.cf").write_text(_MAIN_CF.format(d=root, domain=CUSTOMER_DOMAIN, lmtp=lmtp_port))
    (etc / "master.cf").write_text(_MASTER_CF.format(port=smtp_port))
    _run([POSTFIX, "-c", str(etc), "start"], "postfix start")
    return servers


def _wait_listening(port: int, within: float = 15.0) -> None:
    import socket

    deadline = time.monotonic() + within
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _stop(servers: MailServers) -> None:
    for args in (
        [POSTFIX, "-c", str(servers.root / "etc"), "stop"],
        [DOVEADM, "-c", str(servers.root / "dovecot" / "dovecot.conf"), "stop"],
    ):
        if Path(args[2]).exists():
            subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )


@pytest.fixture
def mail_servers() -> Iterator[MailServers]:
    """A fresh Postfix + Dovecot pair for one test (about a second to start)."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    # not under pytest's tmp_path: its 0700 parents keep the `mail` and `postfix` users out
    root = Path(tempfile.mkdtemp(prefix="gw-mailservers-"))
    root.chmod(0o755)
    servers = None
    try:
        servers = _start(root)
        _wait_listening(servers.smtp_port)
        _wait_listening(servers.imap_port)
        _wait_listening(servers.lmtp_port)
        yield servers
    finally:
        if servers is not None:
            _stop(servers)
        else:  # a half start: stop whatever came up
            _stop(MailServers(root, 0, 0, 0))
        shutil.rmtree(root, ignore_errors=True)
