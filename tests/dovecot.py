"""A private Dovecot for tests: its own config, loopback ports, a trustme certificate.

Test modules import the fixtures `dovecot_server` and `own_dovecot_server` (used as `dovecot`
and `own_dovecot`).

Why a real server: IMAP clients fail on what servers really do (UIDVALIDITY from a counter
file, IDLE pushes, BYE on shutdown, STARTTLS), which a fake never shows. `make test` installs
Dovecot as root; without /usr/sbin/dovecot the tests that need it are skipped with a reason.

Every user logs in with the password "secret" (static passdb), and each user is its own
maildir, so one running Dovecot isolates tests that use different user names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import imaplib
import json
import os
import pwd
import shutil
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from gateway.config import Listen, Settings, load_settings
from gateway.service import Gateway

from conftest import write_config
from helpers.mailsystem import (
    DOVECOT,
    PASSWORD,
    dovecot_conf,
    dovecot_prepare,
    dovecot_start,
    dovecot_stop,
    private_folder,
    server_port,
    start_with_retry,
)
from helpers.waiting import wait_for


def require_dovecot() -> None:
    if not Path(DOVECOT).exists():
        pytest.skip(f"{DOVECOT} is not installed (`make test` installs it as root)")
    if os.geteuid() != 0:
        pytest.skip("a private Dovecot needs root (it drops to the mail and dovenull users)")


class Dovecot:
    """One private Dovecot instance. Use `start()`, `stop()`, `restart()`; see the helpers."""

    def __init__(self) -> None:
        require_dovecot()
        # not pytest's tmp_path: that is 0700, and Dovecot's own users must traverse the folder
        self.dir = private_folder("gw-dovecot-")
        self.imap_port = self.imaps_port = 0
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.dir / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.dir / "cert.pem"))
        self.ca_file = self.dir / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.conf = self.dir / "dovecot.conf"
        mail = pwd.getpwnam("mail")
        self._uid, self._gid = mail.pw_uid, mail.pw_gid
        dovecot_prepare(self.dir)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start on the ports of the first start (clients keep them across restarts); the first
        start picks ports and picks again if one was taken meanwhile."""
        if self.imap_port:
            dovecot_start(self.conf, self.imap_port)
        else:
            start_with_retry(self._first_start)

    def _first_start(self) -> None:
        self.imap_port, self.imaps_port = server_port(), server_port()
        self.conf.write_text(
            dovecot_conf(self.dir, imap_port=self.imap_port, imaps_port=self.imaps_port)
        )
        try:
            dovecot_start(self.conf, self.imap_port)
        except RuntimeError:
            self.imap_port = 0
            raise

    def stop(self) -> None:
        dovecot_stop(self.dir)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)  # the test's subject: the server is away for this long
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        p = self.dir / "dovecot.log"
        return p.read_text(errors="replace") if p.exists() else ""

    # -- mailbox helpers (blocking imaplib: simple and independent of the code under test) ---

    def client(self, user: str) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        c.login(user, PASSWORD)
        return c

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        with self.client(user) as c:
            if folder != "INBOX":
                c.create(folder)
            typ, data = c.append(folder, "", None, raw)
            assert typ == "OK", data

    def create(self, user: str, folder: str) -> None:
        with self.client(user) as c:
            c.create(folder)

    def delete(self, user: str, folder: str) -> None:
        with self.client(user) as c:
            typ, data = c.delete(folder)
            assert typ == "OK", data

    def uids(self, user: str, folder: str = "INBOX", criteria: str = "ALL") -> list[int]:
        with self.client(user) as c:
            typ, _ = c.select(_quote(folder))
            if typ != "OK":
                return []
            typ, data = c.uid("SEARCH", criteria)
            return [int(x) for x in data[0].split()]

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, str]:
        """UID -> the FLAGS list as text, for checking the after-action."""
        out: dict[int, str] = {}
        with self.client(user) as c:
            c.select(_quote(folder))
            _typ, data = c.uid("FETCH", "1:*", "(UID FLAGS)")
            for item in data:
                if not item:
                    continue
                text = item.decode() if isinstance(item, bytes) else item[0].decode()
                uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
                out[uid] = text.split("FLAGS (", 1)[1].split(")", 1)[0]
        return out

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        with self.client(user) as c:
            _typ, data = c.status(_quote(folder), "(UIDVALIDITY)")
            return int(data[0].decode().split("UIDVALIDITY ", 1)[1].rstrip(")"))

    def fill_maildir(self, user: str, mails: list[bytes], folder: str = "INBOX") -> None:
        """Write mails straight into the user's maildir (fast: 10,000 in about a second).

        Dovecot gives them UIDs when the folder is next opened, as with mail delivered by an
        external LDA.
        """
        root = self.dir / "mail" / user
        box = root if folder == "INBOX" else root / f".{folder}"
        for sub in ("", "cur", "new", "tmp"):
            p = box / sub
            p.mkdir(parents=True, exist_ok=True)
        for p in (root, box, box / "cur", box / "new", box / "tmp"):
            os.chown(p, self._uid, self._gid)
        now = int(time.time())
        for i, raw in enumerate(mails):
            path = box / "new" / f"{now}.M{i}P{os.getpid()}.gwtest,S={len(raw)}"
            path.write_bytes(raw)
            os.chown(path, self._uid, self._gid)


def _quote(folder: str) -> str:
    return f'"{folder}"'


def tls_client_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


@contextlib.contextmanager
def started_dovecot() -> Iterator[Dovecot]:
    d = Dovecot()
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="session", name="dovecot")
def dovecot_server():
    """One Dovecot for the session; tests isolate themselves by using their own user name."""
    with started_dovecot() as d:
        yield d


@pytest.fixture(name="own_dovecot")
def own_dovecot_server():
    """A Dovecot of the test's own, for tests that stop or restart the server."""
    with started_dovecot() as d:
        yield d


# -- gateway settings and store queries for the IMAP tests --------------------------------


def imap_config(tmp_path: Path, accounts: list[dict], extra: str = "", **replace: str) -> Path:
    blocks = []
    for a in accounts:
        lines = ["[[imap]]"]
        for k, v in a.items():
            lines.append(f"{k} = {json.dumps(v)}")
        blocks.append("\n".join(lines))
    return write_config(tmp_path, extra + "\n" + "\n\n".join(blocks) + "\n", **replace)


def account(dovecot, user: str, **over) -> dict:
    """A plaintext loopback account on the test Dovecot, quick to notice and to renew IDLE."""
    a = {
        "host": "127.0.0.1",
        "port": dovecot.imap_port,
        "tls": "none",
        "user": user,
        "password": "secret",
        "mailbox": "support@example.com",
        "poll_interval": 1,
        "idle_renew": 20,
        "timeout": 10,
    }
    a.update(over)
    return a


def imap_settings(tmp_path: Path, accounts: list[dict], **replace: str) -> Settings:
    s = load_settings(imap_config(tmp_path, accounts, **replace))
    return dataclasses.replace(
        s,
        smtp=dataclasses.replace(s.smtp, listen=Listen("127.0.0.1", 0)),
        http=dataclasses.replace(s.http, listen=Listen("127.0.0.1", 0)),
    )


async def rows(gw: Gateway, sql: str, args: tuple = ()) -> list[tuple]:
    return await gw.store.read(lambda db: db.execute(sql, list(args)).fetchall())


async def count(gw: Gateway, sql: str, args: tuple = ()) -> int:
    return (await rows(gw, sql, args))[0][0]


async def wait_count(gw: Gateway, sql: str, n: int, within: float = 15.0) -> None:
    """Until the COUNT(*) query returns n."""

    async def reached() -> bool:
        return await count(gw, sql) == n

    await wait_for(reached, within, f"{sql} == {n}")
