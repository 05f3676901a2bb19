"""IMAP intake with XOAUTH2 against a real Dovecot whose oauth2 passdb asks the local OAuth
issuer about each token (RFC 7662 introspection), the token coming from MSAL (client
credentials) as at Microsoft 365: login, exactly once, expiry and refresh, revocation.

Dovecot's users log in with XOAUTH2 (the token must be active and name the user) or, for the
test's own helpers (appending mails), with the static password."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil

import pytest

from gateway.service import Gateway
from gateway.store import tokens as st

from conftest import make_mail, wait_for, wait_processed
from dovecot import Dovecot, account, count, imap_settings, rows, wait_count
from helpers.mailsystem import dovecot_conf, private_folder, run
from helpers.oauth_issuer import RunningIssuer, trusted_issuer

DOVEADM = "/usr/bin/doveadm"
USER = "support@example.com"
RAW = "SELECT COUNT(*) FROM raw_mails"
IDLE = "SELECT COUNT(*) FROM imap_state WHERE state = 'idle'"


class EditedDovecot(Dovecot):
    """A private Dovecot whose dovecot.conf (tests/helpers/mailsystem.py) gets `edit`ed."""

    def edit(self, conf: str) -> str:
        return conf

    def kick(self, user: str) -> None:
        """End the user's sessions (`doveadm kick`): clients must log in again."""
        run([DOVEADM, "-c", str(self.conf), "kick", user], "doveadm kick")

    def _first_start(self) -> None:
        import dovecot as module

        real = dovecot_conf
        module.dovecot_conf = lambda d, **kw: self.edit(real(d, **kw))  # type: ignore[assignment]
        try:
            super()._first_start()
        finally:
            module.dovecot_conf = real


class OAuthDovecot(EditedDovecot):
    """With `passdb { driver = oauth2 }` for XOAUTH2 and OAUTHBEARER (doc.dovecot.org, "Open
    Authentication v2.0 database"), introspecting at the issuer; the static password passdb
    stays for PLAIN and LOGIN (the test's own helpers)."""

    def __init__(self, issuer: RunningIssuer):
        super().__init__()
        self.issuer = issuer
        (self.dir / "dovecot-oauth2.conf.ext").write_text(
            f"introspection_mode = post\n"
            f"introspection_url = {issuer.url}/introspect\n"
            f"force_introspection = yes\n"
            f"username_attribute = username\n"
            f"active_attribute = active\n"
            f"active_value = true\n"
            f"tls_ca_cert_file = {issuer.ca_file}\n"
        )

    def edit(self, conf: str) -> str:
        conf = conf.replace(
            "auth_mechanisms = plain login", "auth_mechanisms = plain login xoauth2"
        )
        oauth = (
            f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {self.dir}/dovecot-oauth2.conf.ext\n}}\n"
        )
        conf = conf.replace(
            "passdb {\n  driver = static\n",
            oauth + "passdb {\n  driver = static\n  mechanisms = plain login\n",
        )
        assert "driver = oauth2" in conf and "xoauth2" in conf
        return conf


@pytest.fixture(name="issuer")
def dovecot_issuer(monkeypatch):
    folder = private_folder("gw-oauth-issuer-")  # Dovecot's auth process reads the CA there
    with trusted_issuer(folder, monkeypatch, {"app-1": USER}) as running:
        yield running
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(name="oauth_dovecot")
def oauth_dovecot_server(issuer):
    d = OAuthDovecot(issuer)
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


def oauth_account(d: OAuthDovecot, **over) -> dict:
    a = account(d, USER)
    del a["password"]
    a.update(
        auth="oauth2",
        provider="microsoft",
        tenant="contoso.onmicrosoft.com",
        client_id="app-1",
        client_secret="s3cret",
        authority=d.issuer.url,
    )
    a.update(over)
    return {k: v for k, v in a.items() if v != ""}


async def running(settings) -> Gateway:
    gw = Gateway(settings)
    await gw.start()
    return gw


async def test_xoauth2_login_reads_each_mail_once(oauth_dovecot, tmp_path, caplog):
    d = oauth_dovecot
    for i in range(2):
        d.append(USER, make_mail(message_id=f"o{i}@customer.test", subject=f"Q {i}"))
    gw = await running(imap_settings(tmp_path, [oauth_account(d)]))
    try:
        await wait_processed(gw, 2)
        await wait_count(gw, IDLE, 1)
        await asyncio.to_thread(d.append, USER, make_mail(message_id="o2@customer.test"))
        await wait_count(gw, RAW, 3)
        await wait_for(lambda: all("\\Seen" in f for f in d.flags(USER).values()))
        assert await count(gw, "SELECT COUNT(DISTINCT message_id) FROM raw_mails") == 3
        assert "method=XOAUTH2" in d.log() and d.issuer.issuer.introspections >= 1
        assert d.issuer.issuer.count("client_credentials", USER) == 1
        row = await gw.store.read(lambda db: st.load_token(db, f"imap:{USER}@{_where(d)}"))
        assert row.last_login_at and not row.last_error
        token = row.access_token
    finally:
        await gw.stop(drain_seconds=5)
    assert token not in caplog.text and "s3cret" not in caplog.text


async def test_expired_token_is_refreshed_and_no_mail_is_lost_or_read_twice(
    oauth_dovecot, tmp_path, caplog
):
    d = oauth_dovecot
    d.append(USER, make_mail(message_id="e0@customer.test"))
    gw = await running(imap_settings(tmp_path, [oauth_account(d)]))
    try:
        await wait_count(gw, RAW, 1)
        await wait_count(gw, IDLE, 1)
        d.issuer.issuer.expire(USER)  # the stored token still looks valid to the gateway
        await asyncio.to_thread(d.append, USER, make_mail(message_id="e1@customer.test"))
        await wait_count(gw, RAW, 2)  # the session logged in before the expiry goes on
        await asyncio.to_thread(d.kick, USER)  # and ends; the next login needs a token
        await asyncio.to_thread(d.append, USER, make_mail(message_id="e2@customer.test"))
        await wait_count(gw, RAW, 3, within=30)
        await wait_count(gw, IDLE, 1)
        await asyncio.to_thread(d.append, USER, make_mail(message_id="e3@customer.test"))
        await wait_count(gw, RAW, 4)
        ids = await rows(gw, "SELECT message_id FROM raw_mails ORDER BY id")
        assert ids == [(f"e{i}@customer.test",) for i in range(4)]
        # refused once, then exactly one new token: refreshed on the failure, not in a loop
        assert d.issuer.issuer.count("client_credentials", USER) == 2, d.log()
        # within the same login: the refused token was replaced without another reconnect
        reconnects = [
            r.getMessage()
            for r in caplog.records
            if r.name == "gateway.intake.imap" and "reconnecting" in r.getMessage()
        ]
        assert len(reconnects) == 1 and "TokenError" not in reconnects[0], reconnects
    finally:
        await gw.stop(drain_seconds=5)


async def test_revoked_token_one_clear_error_backoff_then_recovery(oauth_dovecot, tmp_path, caplog):
    d = oauth_dovecot
    caplog.set_level(logging.DEBUG, logger="gateway.intake.imap")
    gw = await running(imap_settings(tmp_path, [oauth_account(d)]))
    try:
        await wait_count(gw, IDLE, 1)
        d.issuer.issuer.revoke(USER)
        await asyncio.to_thread(d.kick, USER)

        def retries() -> list[float]:
            return [
                float(m)
                for r in caplog.records
                if r.name == "gateway.intake.imap"
                for m in re.findall(r"AADSTS65001.*reconnecting in ([\d.]+)s", r.getMessage())
            ]

        await wait_for(lambda: len(retries()) >= 4, 30, "four refused logins")

        def warned() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.name == "gateway.intake.imap"
                and r.levelno >= logging.WARNING
                and "AADSTS65001" in r.getMessage()
            ]

        assert len(warned()) == 1, warned()  # one clear line
        assert "consent" in warned()[0]
        delays = retries()
        assert delays == sorted(delays) and delays[-1] > delays[0]  # backing off, no tight loop
        shown = (
            "SELECT COUNT(*) FROM imap_state WHERE state = 'error' AND error LIKE '%AADSTS65001%'"
        )
        await wait_count(gw, shown, 1)  # `status` shows it between the retries
        login = f"imap:{USER}@{_where(d)}"
        row = await gw.store.read(lambda db: st.load_token(db, login))
        assert "AADSTS65001" in row.last_error

        d.issuer.issuer.allow(USER)  # the admin grants consent again
        await asyncio.to_thread(d.append, USER, make_mail(message_id="r0@customer.test"))
        await wait_count(gw, RAW, 1, within=30)
        row = await gw.store.read(lambda db: st.load_token(db, login))
        assert row.last_error == "" and row.last_login_at

        # withdrawn again later: news again, so one more warning
        await wait_count(gw, IDLE, 1)
        d.issuer.issuer.revoke(USER)
        await asyncio.to_thread(d.kick, USER)
        await wait_for(lambda: len(warned()) == 2, 30, "a second warning")
    finally:
        await gw.stop(drain_seconds=5)


def _where(d: Dovecot) -> str:
    return f"127.0.0.1:{d.imap_port}"
