"""IMAP intake against a real Dovecot: conversations, IDLE, after-actions, exactly once."""

from __future__ import annotations

import asyncio
import json
import smtplib
import time

from click.testing import CliRunner

from gateway.cli import cli
from gateway.service import Gateway

from conftest import make_mail, wait_for, wait_processed
from dovecot import (  # noqa: F401 (fixtures)
    account,
    count,
    dovecot_server,
    imap_config,
    imap_settings,
    own_dovecot_server,
    rows,
    wait_count,
)
from helpers.waiting import wait_idle

RAW = "SELECT COUNT(*) FROM raw_mails"


async def running(settings):
    gw = Gateway(settings)
    await gw.start()
    return gw


async def test_appended_mails_become_conversations_and_idle_is_fast(dovecot, tmp_path):
    user = "conv"
    for i in range(3):
        dovecot.append(user, make_mail(message_id=f"conv{i}@customer.test", subject=f"Q {i}"))
    gw = await running(imap_settings(tmp_path, [account(dovecot, user)]))
    try:
        await wait_processed(gw, 3)
        assert await count(gw, "SELECT COUNT(*) FROM conversations") == 3
        assert await rows(gw, "SELECT DISTINCT source, mailbox FROM raw_mails") == [
            ("imap", "support@example.com")
        ]
        await wait_for(lambda: all("\\Seen" in f for f in dovecot.flags(user).values()))

        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE state = 'idle'", 1)
        # IDLE, not a poll, must bring the new mail: the account never polls and renews IDLE
        # only every idle_renew = 20 s (above the 10 s bound below). A mail appended just
        # before the IDLE command is reported in IDLE's first response (RFC 2177).
        started = time.monotonic()
        await asyncio.to_thread(dovecot.append, user, make_mail(message_id="new@customer.test"))
        await wait_count(gw, RAW, 4, within=10)
        print(f"\nIDLE latency: {time.monotonic() - started:.2f}s")  # reported, not asserted
        await wait_processed(gw, 4)
        assert len(dovecot.flags(user)) == 4  # after = seen: the mails stay, flagged
    finally:
        await gw.stop(drain_seconds=5)


async def test_after_move_and_delete(dovecot, tmp_path):
    dovecot.append("mover", make_mail(message_id="m1@customer.test"))
    dovecot.append("mover", make_mail(message_id="m2@customer.test"))
    dovecot.append("deleter", make_mail(message_id="d1@customer.test"))
    settings = imap_settings(
        tmp_path,
        [
            account(dovecot, "mover", after="move", move_to="Processed"),
            account(dovecot, "deleter", after="delete", mailbox="sales@example.com"),
        ],
    )
    gw = await running(settings)
    try:
        await wait_processed(gw, 3)
        await wait_for(lambda: dovecot.uids("mover") == [] and dovecot.uids("deleter") == [])
        assert len(dovecot.uids("mover", "Processed")) == 2
        assert await rows(gw, "SELECT mailbox, COUNT(*) FROM raw_mails GROUP BY 1 ORDER BY 1") == [
            ("sales@example.com", 1),
            ("support@example.com", 2),
        ]
    finally:
        await gw.stop(drain_seconds=5)


async def test_uidvalidity_change_rescans_without_duplicates(dovecot, tmp_path):
    user, folder = "recreate", "Support"
    mails = [make_mail(message_id=f"uv{i}@customer.test") for i in range(3)]
    for raw in mails:
        dovecot.append(user, raw, folder)
    settings = imap_settings(tmp_path, [account(dovecot, user, folders=[folder])])
    gw = await running(settings)
    try:
        await wait_processed(gw, 3)
    finally:
        await gw.stop(drain_seconds=5)
    before = dovecot.uidvalidity(user, folder)
    dovecot.delete(user, folder)
    for raw in [*mails, make_mail(message_id="uv-new@customer.test")]:
        dovecot.append(user, raw, folder)
    assert dovecot.uidvalidity(user, folder) != before

    gw = await running(settings)
    try:
        await wait_processed(gw, 4)
        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE state = 'idle'", 1)
        assert await count(gw, RAW) == 4
        assert await count(gw, "SELECT COUNT(DISTINCT message_id) FROM messages") == 4
        (validity,) = (await rows(gw, "SELECT uidvalidity FROM imap_state"))[0]
        assert validity == dovecot.uidvalidity(user, folder)
    finally:
        await gw.stop(drain_seconds=5)


async def test_mail_in_mailbox_and_over_smtp_is_stored_once(dovecot, tmp_path):
    raw = make_mail(message_id="both@customer.test")
    dovecot.append("both", raw)
    gw = await running(imap_settings(tmp_path, [account(dovecot, "both")]))
    try:

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
                s.sendmail("alice@customer.test", ["support@example.com"], raw)

        await asyncio.to_thread(send)
        await wait_processed(gw, 1)
        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE state = 'idle'", 1)
        await wait_for(lambda: all("\\Seen" in f for f in dovecot.flags("both").values()))
        await asyncio.to_thread(send)  # and once more after the IMAP copy was read
        await wait_idle(gw)
        assert await count(gw, RAW) == 1
        assert await count(gw, "SELECT COUNT(*) FROM messages") == 1
    finally:
        await gw.stop(drain_seconds=5)


async def test_too_big_mail_stays_in_the_mailbox_and_status_shows_it(dovecot, tmp_path):
    big = make_mail(message_id="big@customer.test", body="x" * 76 + ("\r\n" + "y" * 76) * 15000)
    dovecot.append("sizes", big)  # 1.2 MB, over the test config's 1 MiB max_message_size
    dovecot.append("sizes", make_mail(message_id="small@customer.test"))
    path = imap_config(tmp_path, [account(dovecot, "sizes")])
    gw = await running(imap_settings(tmp_path, [account(dovecot, "sizes")]))
    try:
        await wait_processed(gw, 1)
        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE state = 'idle'", 1)
        assert await rows(gw, "SELECT message_id FROM raw_mails") == [("small@customer.test",)]
        flags = dovecot.flags("sizes")
        assert flags[1] == "" and "\\Seen" in flags[2]  # the big one is left untouched
        result = CliRunner().invoke(cli, ["--config", str(path), "status", "--json"])
        assert result.exit_code == 0, result.output
        folder = json.loads(result.stdout)["imap"][f"sizes@127.0.0.1:{dovecot.imap_port} INBOX"]
        assert folder["done"] == folder["total"] == 2
        assert folder["last_uid"] == 2
        assert folder["skipped"][0]["message_id"] == "big@customer.test"
        assert folder["skipped"][0]["reason"] == "too big"
    finally:
        await gw.stop(drain_seconds=5)


async def test_implicit_tls_and_starttls_with_a_private_ca(dovecot, tmp_path):
    dovecot.append("tls1", make_mail(message_id="tls1@customer.test"))
    dovecot.append("tls2", make_mail(message_id="tls2@customer.test"))
    ca = str(dovecot.ca_file)
    settings = imap_settings(
        tmp_path,
        [
            account(dovecot, "tls1", tls="implicit", port=dovecot.imaps_port, ca_file=ca),
            account(dovecot, "tls2", tls="starttls", port=dovecot.imap_port, ca_file=ca),
        ],
    )
    gw = await running(settings)
    try:
        await wait_processed(gw, 2)
        assert sorted(r[0] for r in await rows(gw, "SELECT message_id FROM raw_mails")) == [
            "tls1@customer.test",
            "tls2@customer.test",
        ]
    finally:
        await gw.stop(drain_seconds=5)


async def test_untrusted_certificate_is_refused(dovecot, tmp_path):
    """Without the private CA the TLS handshake fails: no mail is read, nothing in clear."""
    dovecot.append("notrust", make_mail(message_id="nt@customer.test"))
    settings = imap_settings(
        tmp_path, [account(dovecot, "notrust", tls="implicit", port=dovecot.imaps_port)]
    )
    gw = await running(settings)
    try:
        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE state = 'error'", 1)
        (error,) = (await rows(gw, "SELECT error FROM imap_state"))[0]
        assert "CERTIFICATE_VERIFY_FAILED" in error
        assert await count(gw, RAW) == 0
    finally:
        await gw.stop(drain_seconds=5)


async def test_dovecot_restart_under_the_poller(own_dovecot, tmp_path):
    d = own_dovecot
    d.append("restart", make_mail(message_id="r1@customer.test"))
    gw = await running(imap_settings(tmp_path, [account(d, "restart")]))
    try:
        await wait_processed(gw, 1)
        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE state = 'idle'", 1)
        await asyncio.to_thread(d.restart, 1.0)
        await asyncio.to_thread(d.append, "restart", make_mail(message_id="r2@customer.test"))
        await wait_processed(gw, 2, within=30)
        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE state = 'idle'", 1)
        assert await count(gw, RAW) == 2
    finally:
        await gw.stop(drain_seconds=5)


GMAIL_CONFIRMATION = (
    "(#123456789) Gmail Forwarding Confirmation - Receive Mail from team@customer.test",
    "team@customer.test has requested to automatically forward mail to your email\r\n"
    "address support@example.com.\r\nConfirmation code: 123456789\r\n\r\n"
    "To allow team@customer.test to automatically forward mail to your address, please\r\n"
    "click the link below to confirm the request:\r\n\r\n"
    "https://mail-settings.google.com/mail/vf-%5BANGjdJ8example%5D-abc\r\n",
)


async def test_forwarding_confirmations_are_shown_not_answered(dovecot, tmp_path):
    subject, body = GMAIL_CONFIRMATION
    dovecot.append(
        "fwd",
        make_mail(
            sender="Gmail Team <forwarding-noreply@google.com>",
            subject=subject,
            body=body,
            message_id="fwd-imap@google.com",
        ),
    )
    path = imap_config(tmp_path, [account(dovecot, "fwd")])
    gw = await running(imap_settings(tmp_path, [account(dovecot, "fwd")]))
    try:
        over_smtp = make_mail(
            sender="Gmail Team <forwarding-noreply@google.com>",
            to="sales@example.com",
            subject=subject.replace("123456789", "987654321"),
            body=body.replace("123456789", "987654321"),
            message_id="fwd-smtp@google.com",
        )

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
                s.sendmail("forwarding-noreply@google.com", ["sales@example.com"], over_smtp)

        await asyncio.to_thread(send)
        await wait_processed(gw, 2)
        await wait_count(gw, "SELECT COUNT(*) FROM forwarding_confirmations", 2)
        result = CliRunner().invoke(cli, ["--config", str(path), "status", "--json"])
        shown = json.loads(result.stdout)["forwarding_confirmations"]
        by_mailbox = {c["mailbox"]: c for c in shown}
        assert by_mailbox["support@example.com"]["provider"] == "gmail"
        assert by_mailbox["support@example.com"]["code"] == "123456789"
        assert by_mailbox["support@example.com"]["link"].startswith(
            "https://mail-settings.google.com/mail/vf-"
        )
        assert by_mailbox["sales@example.com"]["code"] == "987654321"
        text = CliRunner().invoke(cli, ["--config", str(path), "imap", "status"]).stdout
        assert "code: 123456789" in text
        assert f"link: {by_mailbox['support@example.com']['link']}\n" in text  # never shortened
        annotations = await rows(gw, "SELECT annotations FROM messages")
        assert all("forwarding_confirmation" in a for (a,) in annotations)
    finally:
        await gw.stop(drain_seconds=5)


async def test_idle_renewal_and_plain_polling_keep_reading(dovecot, tmp_path):
    settings = imap_settings(
        tmp_path,
        [
            account(dovecot, "renew", idle_renew=1),  # IDLE re-issued every second
            account(dovecot, "poll", idle=False, poll_interval=1, mailbox="sales@example.com"),
        ],
    )
    gw = await running(settings)
    try:
        await wait_count(gw, "SELECT COUNT(*) FROM imap_state WHERE first_sync_done = 1", 2)
        # a few renewals and polls with nothing to read: each IDLE renewal and each poll
        # stores its state again, so count the distinct updated_at of each account
        seen: dict[str, set[str]] = {}

        async def cycled() -> bool:
            for acct, updated in await rows(gw, "SELECT account, updated_at FROM imap_state"):
                seen.setdefault(acct, set()).add(updated)
            return len(seen) == 2 and all(len(v) >= 3 for v in seen.values())

        await wait_for(cycled, 15, "two IDLE renewals and two polls")
        states = dict(await rows(gw, "SELECT account, state FROM imap_state"))
        assert sorted(states.values()) == ["idle", "polling"], states
        for user in ("renew", "poll"):
            await asyncio.to_thread(dovecot.append, user, make_mail(message_id=f"{user}@c.test"))
        await wait_processed(gw, 2, within=10)
        assert await rows(gw, "SELECT mailbox FROM raw_mails ORDER BY mailbox") == [
            ("sales@example.com",),
            ("support@example.com",),
        ]
    finally:
        await gw.stop(drain_seconds=5)
